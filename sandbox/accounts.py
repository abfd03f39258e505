"""Delegated accounts (§3.3): find or create the account of each mailbox of a request, in a few statements."""

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from sandbox.models import Account
from sandbox.secrets_util import new_id

ACCOUNTS = Account.__table__
COLUMNS = (ACCOUNTS.c.id, ACCOUNTS.c.member_id, ACCOUNTS.c.service_account_id, ACCOUNTS.c.scope,
           ACCOUNTS.c.profile_revoked)
REPOINT = (update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("account_id"))
           .values(service_account_id=bindparam("new_sa"), scope=bindparam("new_scope"), profile_revoked=False))
UPSERT_DIALECTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def upsert_accounts(db, sa, wanted):
    """Return {member id: account id} for [(member, scope)], creating missing accounts, all now under `sa`."""
    if not wanted:
        return {}
    found = _accounts_of(db, sa.client_id, [member.id for member, _ in wanted])
    missing = [(member, scope) for member, scope in wanted if member.id not in found]
    if missing:
        _create(db, sa, missing)
        found.update(_accounts_of(db, sa.client_id, [member.id for member, _ in missing]))
    changes = [{"account_id": found[member.id].id, "new_sa": sa.id, "new_scope": scope}
               for member, scope in wanted
               if (found[member.id].service_account_id, found[member.id].scope,
                   bool(found[member.id].profile_revoked)) != (sa.id, scope, False)]
    if changes:
        db.execute(REPOINT, changes)
    return {member_id: row.id for member_id, row in found.items()}


def _accounts_of(db, client_id, member_ids):
    rows = db.execute(select(*COLUMNS).where(ACCOUNTS.c.client_id == client_id,
                                             ACCOUNTS.c.member_id.in_(member_ids)))
    return {row.member_id: row for row in rows}


def _create(db, sa, missing):
    rows = [{"id": new_id("acc"), "client_id": sa.client_id, "member_id": member.id, "profile_id": new_id("pro"),
             "service_account_id": sa.id, "scope": scope, "profile_revoked": False} for member, scope in missing]
    make_insert = UPSERT_DIALECTS.get(db.get_bind().dialect.name)
    if make_insert is not None:
        # Two requests for one mailbox may race to create its account: the loser's row is skipped and
        # the caller reads the winner's back.
        db.execute(make_insert(ACCOUNTS).on_conflict_do_nothing(), rows)
        return
    for row in rows:
        _create_one(db, row)


def _create_one(db, row):
    try:
        with db.begin_nested():
            db.execute(insert(ACCOUNTS), [row])
    except IntegrityError:
        pass  # the racing request created it; the caller reads it back
