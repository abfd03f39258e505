"""Revoking one mailbox's delegated authorization at Cronofy, then forgetting its tokens.

A plain function of the mailbox: the remove action calls it for each authorized mailbox, and the
bulk engine's worker calls it through the rate budget.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import or_

from models.mailbox import Mailbox
from services.platform import audit, upstream
from services.platform.crypto import TokenDecryptionError, cipher_for
from services.cronofy import (
    AuthenticationError,
    CronofyError,
    ForbiddenError,
    RateLimitedError,
    UnavailableError,
)
from services.mailboxes.mailbox_states import transition

# A mailbox holding either token has an authorization upstream that removal must revoke first.
HOLDS_TOKENS = or_(Mailbox.refresh_token_encrypted.is_not(None), Mailbox.access_token_encrypted.is_not(None))


class MailboxRevocationError(RuntimeError):
    """Cronofy did not confirm a revocation; nothing changed. The message is fit to show."""


def holds_tokens(mailbox: Mailbox) -> bool:
    """Return whether the mailbox has an authorization to revoke upstream."""
    return bool(mailbox.refresh_token_encrypted or mailbox.access_token_encrypted)


def revoke_mailbox(mailbox: Mailbox, *, actor) -> None:
    """Revoke the mailbox's authorization upstream, mark it revoked on its timeline and clear its tokens.

    The refresh token is revoked when stored, as §3.7.1 recommends (it cannot have expired).
    :raises MailboxRevocationError: if Cronofy did not confirm; the mailbox is left unchanged.
    """
    if mailbox.status == "revoked" and not holds_tokens(mailbox):
        return
    token = _stored_token(mailbox)
    if token:
        _revoke_upstream(mailbox, token)
    had = mailbox.granted_scope
    summary = "Access revoked at Cronofy" if token else "Marked revoked (no token was stored)"
    transition(
        mailbox, "revoked", kind="revoked", actor=actor, details={"had_scope": had} if had else None,
        summary=f"{summary}; it had {had}" if had else summary,
    )
    # A revoked mailbox has no access: what it had stays on its timeline, not in its current scope.
    mailbox.granted_scope = None
    mailbox.access_token_encrypted = None
    mailbox.refresh_token_encrypted = None
    mailbox.access_token_expires_at = None


def revoke_on_request(mailbox: Mailbox, *, actor) -> None:
    """Revoke one mailbox from its page and audit who did it.

    :raises MailboxRevocationError: if Cronofy did not confirm, or the mailbox holds no authorization.
    """
    if not holds_tokens(mailbox):
        raise MailboxRevocationError("It holds no authorization: there is nothing to revoke.")
    revoke_mailbox(mailbox, actor=actor)
    audit.record("mailbox.revoked", actor=actor, organization=mailbox.organization, target=mailbox,
                 details={"email": mailbox.email})


def _stored_token(mailbox: Mailbox) -> str | None:
    ciphertext = mailbox.refresh_token_encrypted or mailbox.access_token_encrypted
    if not ciphertext:
        return None
    try:
        return cipher_for(current_app.config).decrypt(ciphertext)
    except TokenDecryptionError as exc:
        raise MailboxRevocationError(
            "Its stored token cannot be decrypted with the configured keys (TOKEN_ENCRYPTION_KEYS changed?), "
            "so it cannot be revoked at Cronofy."
        ) from exc


def _revoke_upstream(mailbox: Mailbox, token: str) -> None:
    data_center = mailbox.connection.data_center if mailbox.connection else mailbox.organization.data_center
    try:
        with upstream.client_for(data_center) as client:
            client.revoke(token=token)
    except CronofyError as exc:
        raise MailboxRevocationError(f"{explain(exc)} It is still authorized; try again.") from exc


def explain(exc: CronofyError) -> str:
    """Return what an upstream error means for the admin, in one sentence."""
    if isinstance(exc, UnavailableError):
        return "Cronofy could not be reached or did not answer in time."
    if isinstance(exc, RateLimitedError):
        return "Cronofy is limiting the rate of requests just now; wait a minute."
    if isinstance(exc, AuthenticationError):
        return "Cronofy did not accept the console's credentials or the token."
    if isinstance(exc, ForbiddenError):
        return "Cronofy refused: the authorization lacks the permission for this."
    return f"Cronofy refused the request ({exc.error_key or exc.status or 'no reason given'})."
