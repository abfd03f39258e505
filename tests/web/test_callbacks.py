"""The delegated-access callback endpoint: verify, store before answering, refuse without storing."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import func, select

from extensions import db
from models.authorization import AuthorizationAttempt, CallbackReceipt
from models.mailbox import Mailbox
from services.cronofy import HMAC_HEADER, sign
from services.engine import attempts, runs
from tests.helpers import make_connection, make_mailbox

DELEGATED = "read_account list_calendars read_events create_event delete_event read_free_busy"


@pytest.fixture
def queue(app, tmp_path):
    app.config.update(QUEUE_PATH=str(tmp_path / "queue.sqlite"), QUEUE_NAME=f"ecc-test-{secrets.token_hex(4)}")


@pytest.fixture
def attempt(make_org_admin, queue):
    """A queued attempt whose callback URL token is known to the test (returned with it)."""
    admin = make_org_admin()
    connection = make_connection(admin.organization)
    connection.granted_delegated_scope = DELEGATED
    mailbox = make_mailbox(admin.organization)
    run = runs.start_run(admin.organization, connection=connection, scope="read_write", actor=admin, source="t",
                         mailbox_ids_select=select(Mailbox.id).where(Mailbox.id == mailbox.id))
    db.session.commit()
    row = db.session.scalar(select(AuthorizationAttempt).where(AuthorizationAttempt.run_id == run.id))
    token = secrets.token_urlsafe(24)
    row.callback_token_hash = attempts.hash_token(token)
    row.status = "requested"
    db.session.commit()
    return row, token


def post(client, app, token, payload, *, signed=True, secret=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if secret == "":
        headers[HMAC_HEADER] = ""
    elif signed:
        headers[HMAC_HEADER] = sign(body, secret or app.config["CRONOFY_CLIENT_SECRET"])
    return client.post(f"/callbacks/delegated/{token}", data=body, headers=headers)


def receipts():
    db.session.expire_all()
    return db.session.scalars(select(CallbackReceipt)).all()


def test_signed_success_is_stored_encrypted_before_the_200(app, csrf_client, attempt):
    row, token = attempt
    code = "Zk3P0qLm8XvB2nR7tY1cW5eD9hJ4uF6s"
    response = post(csrf_client, app, token, {"authorization": {"code": code, "state": row.state}})
    assert response.status_code == 200  # CSRF-exempt: Cronofy sends no token
    [receipt] = receipts()
    assert receipt.attempt_id == row.id and receipt.hmac_status == "valid" and receipt.processed_at is None
    assert receipt.code_encrypted and code not in receipt.code_encrypted
    assert db.session.get(AuthorizationAttempt, row.id).callback_at is not None


def test_error_shape_is_stored_with_its_key_and_words(app, client, attempt):
    row, token = attempt
    body = {"authorization": {"error": "unable_to_grant_scope", "error_key": "unable_to_grant_scope",
                              "error_description": "Cannot grant read_events", "state": row.state}}
    assert post(client, app, token, body).status_code == 200
    [receipt] = receipts()
    assert (receipt.error_key, receipt.error_description, receipt.hmac_status) == (
        "unable_to_grant_scope", "Cannot grant read_events", "valid")
    assert receipt.code_encrypted is None


@pytest.mark.parametrize("case, status", [
    ("unknown_token", 404), ("bad_signature", 401), ("wrong_state", 400), ("not_json", 400),
    ("no_authorization", 400), ("too_large", 413), ("unsigned", 401), ("empty_signature", 401),
    ("nested_deep", 400),
])
def test_refused_callbacks_store_nothing(app, client, attempt, case, status):
    row, token = attempt
    good = {"authorization": {"code": "c" * 32, "state": row.state}}
    kwargs = {
        "unknown_token": dict(token="x" * 32, payload=good),
        "bad_signature": dict(token=token, payload=good, secret="not-the-secret"),
        "wrong_state": dict(token=token, payload={"authorization": {"code": "c" * 32, "state": "forged"}}),
        "not_json": dict(token=token, payload=None, raw=b"{not json"),
        "no_authorization": dict(token=token, payload={"code": "c" * 32}),
        "too_large": dict(token=token, payload=None, raw=b"{" + b" " * 70_000 + b"}"),
        "unsigned": dict(token=token, payload=good, signed=False),
        "empty_signature": dict(token=token, payload=good, secret=""),
        "nested_deep": dict(token=token, payload=None, raw=b"[" * 5000 + b"]" * 5000),
    }[case]
    response = post(client, app, **kwargs)
    assert response.status_code == status
    assert response.is_json
    assert receipts() == []
    assert db.session.get(AuthorizationAttempt, row.id).callback_at is None


def test_duplicates_are_stored_and_answered_200(app, client, attempt):
    row, token = attempt
    body = {"authorization": {"code": "d" * 32, "state": row.state}}
    assert [post(client, app, token, body).status_code for _ in range(2)] == [200, 200]
    assert db.session.scalar(select(func.count(CallbackReceipt.id))) == 2


def test_a_forged_unsigned_failure_cannot_spoil_the_genuine_callback(app, client, attempt):
    """The attack from the penetration test: an unsigned failure posted first, then Cronofy's signed code."""
    row, token = attempt
    forged = {"authorization": {"error": "access_denied", "error_description": "Forged by an attacker",
                                "state": row.state}}
    refused = post(client, app, token, forged, signed=False)
    assert refused.status_code == 401
    assert "not signed" in refused.get_json()["error"]
    assert receipts() == []
    genuine = post(client, app, token, {"authorization": {"code": "g" * 32, "state": row.state}})
    assert genuine.status_code == 200
    [receipt] = receipts()
    assert receipt.code_encrypted and receipt.error is None and receipt.hmac_status == "valid"
    assert db.session.get(Mailbox, row.mailbox_id).last_error_description is None


@pytest.mark.config(CALLBACKS_ALLOW_UNSIGNED=True)
def test_unsigned_callbacks_are_stored_only_when_the_setting_allows_them(app, client, attempt):
    row, token = attempt
    body = {"authorization": {"code": "u" * 32, "state": row.state}}
    assert post(client, app, token, body, signed=False).status_code == 200
    [receipt] = receipts()
    assert receipt.hmac_status == "absent"


def test_the_callback_url_secret_is_not_stored_in_plain_text(app, attempt):
    row, _ = attempt
    url = attempts.callback_url_of(row)
    secret = url.rsplit("/", 1)[1]
    assert url.startswith("http") and len(secret) >= 32
    raw = db.session.execute(
        select(AuthorizationAttempt.__table__).where(AuthorizationAttempt.id == row.id)).one()
    assert not any(isinstance(value, str) and secret in value for value in raw)
