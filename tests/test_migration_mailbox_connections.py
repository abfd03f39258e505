"""Migration c5d2f8a1b634 fixes rows stored before it: shared mailboxes synced as `resource`, synced names
remembered as the upstream's, and mailboxes without a connection given the one they were authorized
through or the one serving their domain."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from extensions import db
from tests.test_migrations import empty_database_url, fresh_app  # noqa: F401 (fixtures)

BEFORE = "b1e7c3a90d21"
NOW = "2026-12-01 10:00:00+00:00"


def _insert(conn, table: str, **values) -> None:
    columns = ", ".join(values)
    conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + k for k in values)})"), values)


def _connection(conn, id_, domain, status="active"):
    _insert(conn, "connections", id=id_, organization_id=1, status=status, provider="google", data_center="us",
            domain=domain, requested_scope="", requested_delegated_scope="", granted_scope="",
            granted_delegated_scope="", created_at=NOW, updated_at=NOW)


def _mailbox(conn, id_, email, *, kind="user", source="import", status="new", name="", **extra):
    _insert(conn, "mailboxes", id=id_, organization_id=1, email=email, name=name, kind=kind, source=source,
            status=status, status_changed_at=NOW, created_at=NOW, updated_at=NOW, **extra)


def _seed(conn) -> None:
    _insert(conn, "organizations", id=1, name="Acme", slug="acme", data_center="us", created_at=NOW, updated_at=NOW)
    _connection(conn, 1, "acme.example")
    _connection(conn, 2, "globex.example")
    _connection(conn, 3, "globex.example", status="needs_reauth")
    _mailbox(conn, 1, "sales@acme.example", kind="resource", source="resource_sync", name="Sales (shared)",
             connection_id=1)
    _mailbox(conn, 2, "room.atlas@acme.example", kind="resource", source="resource_sync", name="Atlas",
             capacity=8, connection_id=1)
    _mailbox(conn, 3, "ann@acme.example")  # imported without a connection
    _mailbox(conn, 4, "bob@globex.example")  # two live connections serve globex.example: left alone
    _mailbox(conn, 5, "cy@globex.example", status="authorized")  # authorized through connection 2
    _mailbox(conn, 6, "kit@acme.example", kind="resource", name="Kit room")  # an admin's resource: kept
    _insert(conn, "authorization_runs", id=1, organization_id=1, connection_id=2, action="authorize",
            status="completed", scope="free_busy", source="test", total=1, auto_continue=True,
            failure_threshold=0.2, current_wave=1, started_at=NOW, created_at=NOW, updated_at=NOW)
    _insert(conn, "authorization_attempts", id=1, run_id=1, organization_id=1, connection_id=2, mailbox_id=5,
            wave=1, status="authorized", state="st-1", callback_token_hash="h", scope="free_busy", send_tries=1,
            is_retried=False, created_at=NOW, updated_at=NOW, callback_url_encrypted="x")


def test_rows_from_before_get_their_kind_upstream_name_and_connection(fresh_app):
    upgrade(revision=BEFORE)
    with db.engine.begin() as conn:
        _seed(conn)
    upgrade()
    with db.engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(
            text("SELECT id, kind, name, upstream_name, connection_id FROM mailboxes"))}
    assert (rows[1].kind, rows[1].upstream_name) == ("shared", "Sales (shared)")
    assert (rows[2].kind, rows[2].upstream_name) == ("resource", "Atlas")
    assert (rows[3].connection_id, rows[3].upstream_name) == (1, None)
    assert rows[4].connection_id is None
    assert rows[5].connection_id == 2
    assert (rows[6].kind, rows[6].connection_id) == ("resource", 1)
    downgrade(revision=BEFORE)
    upgrade()
