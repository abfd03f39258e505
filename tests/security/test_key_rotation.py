"""Key rotation keeps every stored token readable, and after it the old key can be dropped."""

import pytest
from cryptography.fernet import Fernet

from extensions import db
from models.connection import Connection
from models.mailbox import Mailbox
from services.platform import keys
from services.platform.crypto import TokenCipher, TokenDecryptionError


@pytest.fixture
def old_key(app):
    return app.config["TOKEN_ENCRYPTION_KEYS"][0]


def _stored(app, make_organization, old_key):
    organization = make_organization()
    old = TokenCipher([old_key])
    connection = Connection(
        organization_id=organization.id, provider="google", data_center="us", status="active",
        access_token_encrypted=old.encrypt("sa-access"), refresh_token_encrypted=old.encrypt("sa-refresh"),
    )
    mailbox = Mailbox(
        organization_id=organization.id, email="alice@acme.example", kind="user", status="authorized",
        refresh_token_encrypted=old.encrypt("acc-refresh"),
    )
    db.session.add_all([connection, mailbox])
    db.session.commit()
    return connection, mailbox


def test_rotation_re_encrypts_under_the_new_key(app, make_organization, old_key):
    connection, mailbox = _stored(app, make_organization, old_key)
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key, old_key]

    assert keys.rotate_all() == {"Connection": 1, "Mailbox": 1, "CallbackReceipt": 0, "AuthorizationAttempt": 0, "UserSession": 0,
                                 "OutgoingEmail": 0, "IdempotencyRecord": 0, "WebhookSecret": 0}

    only_new = TokenCipher([new_key])
    db.session.expire_all()
    assert only_new.decrypt(db.session.get(Connection, connection.id).refresh_token_encrypted) == "sa-refresh"
    assert only_new.decrypt(db.session.get(Connection, connection.id).access_token_encrypted) == "sa-access"
    assert only_new.decrypt(db.session.get(Mailbox, mailbox.id).refresh_token_encrypted) == "acc-refresh"


def test_without_rotation_dropping_the_old_key_loses_tokens(app, make_organization, old_key):
    connection, _ = _stored(app, make_organization, old_key)
    with pytest.raises(TokenDecryptionError):
        TokenCipher([Fernet.generate_key().decode()]).decrypt(connection.refresh_token_encrypted)


def test_rotation_is_resumable(app, make_organization, old_key):
    _stored(app, make_organization, old_key)
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key, old_key]
    keys.rotate_all()
    # A second run (e.g. after an interruption) rotates again without harm.
    assert keys.rotate_all()["Connection"] == 1


def test_cli_rotate_reports_and_fails_clearly_without_the_old_key(app, runner, make_organization, old_key):
    connection, _ = _stored(app, make_organization, old_key)
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key, old_key]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "1 connection row(s)" in result.output

    app.config["TOKEN_ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code != 0
    assert "Put the previous key back" in result.output
