"""Token-encryption keys: re-encrypting every stored secret under the newest key.

Rotation: put a new key first in TOKEN_ENCRYPTION_KEYS (keep the old ones after it), restart, run
`flask keys rotate`, then drop the old keys. Rows are re-encrypted in chunks, each chunk committed,
so a rotation interrupted half-way can simply be run again.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import or_, select

from extensions import db
from services.platform.crypto import cipher_for


@dataclass(frozen=True)
class EncryptedColumns:
    model_path: str  # "module:Class", imported lazily so that this module has no model import cycle
    columns: tuple[str, ...]


ENCRYPTED = (
    EncryptedColumns("models.connection:Connection", ("access_token_encrypted", "refresh_token_encrypted")),
    EncryptedColumns("models.mailbox:Mailbox", ("access_token_encrypted", "refresh_token_encrypted")),
    EncryptedColumns("models.authorization:CallbackReceipt", ("code_encrypted",)),
    EncryptedColumns("models.authorization:AuthorizationAttempt", ("callback_url_encrypted",)),
    EncryptedColumns("models.session:UserSession", ("stash_encrypted",)),
    EncryptedColumns("models.outgoing_email:OutgoingEmail", ("body_encrypted",)),
    EncryptedColumns("models.idempotency:IdempotencyRecord", ("response_encrypted",)),
    EncryptedColumns("models.webhook:WebhookSecret", ("secret_encrypted",)),
)
CHUNK = 500


def _model(path: str):
    module, _, name = path.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)


def rotate_all(chunk: int = CHUNK) -> dict[str, int]:
    """Re-encrypt every stored secret under the first configured key; return rows rotated per model.

    :raises services.platform.crypto.TokenDecryptionError: a value no configured key opens (add the old key back).
    """
    cipher = cipher_for(current_app.config)
    rotated: dict[str, int] = {}
    for spec in ENCRYPTED:
        model = _model(spec.model_path)
        rotated[model.__name__] = _rotate_model(model, spec.columns, cipher, chunk)
    return rotated


def _rotate_model(model, columns, cipher, chunk: int) -> int:
    count, last_id = 0, 0
    has_secret = or_(*(getattr(model, c).is_not(None) for c in columns))
    while True:
        rows = db.session.scalars(
            select(model).where(model.id > last_id, has_secret).order_by(model.id).limit(chunk)
        ).all()
        if not rows:
            return count
        for row in rows:
            for column in columns:
                value = getattr(row, column)
                if value:
                    setattr(row, column, cipher.rotate(value))
        last_id = rows[-1].id
        count += len(rows)
        db.session.commit()
