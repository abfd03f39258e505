"""An approval from a consent page that a newer attempt replaced: refused, and given back to Cronofy.

Pressing Connect again supersedes the wizard's earlier attempts (only the newest may complete), but
the administrator may still approve on an old page. Each approval creates an authorization on
Cronofy's side, so refusing it without a word would leave a second service account for the domain.
The code is therefore exchanged and the authorization it produced revoked at once (§3.2, §3.7.1),
unless it names a service account a connection relies on: revoking that one would end the
connection (§9: whether a second consent yields the same `ser_` id is undocumented). Nothing of the
console's own state changes.
"""

from __future__ import annotations

import logging

from models.onboarding import ConsentAttempt
from services.connections.replacement import authorizations_page, is_in_use
from services.cronofy import CronofyError, RetryPolicy, TokenSet
from services.platform import upstream

log = logging.getLogger(__name__)

# The admin is waiting for the refusal page: one try per call.
GIVE_BACK_RETRY = RetryPolicy(max_attempts=1)

REVOKED = "revoked"  # the approval's authorization was revoked upstream
KEPT = "kept"  # it named a service account a connection uses: nothing to give back
NOT_REVOKED = "not_revoked"  # Cronofy did not confirm the revocation
UNIDENTIFIED = "unidentified"  # Cronofy did not say whose it was: left alone rather than risk a connection's

TEXTS = {
    REVOKED: "The approval given on that consent page was handed back to Cronofy (revoked), so it leaves no "
             "second service account for your domain.",
    KEPT: "It named the service account this organization is already connected with, so there was nothing to "
          "hand back.",
    NOT_REVOKED: "Cronofy did not confirm that the approval given on that consent page was revoked. If Cronofy's "
                 "authorizations page lists a second service account for your domain, remove it there.",
    UNIDENTIFIED: "Cronofy did not say which service account the approval given on that consent page was for, so "
                  "it was left alone. If Cronofy's authorizations page lists a second service account for your "
                  "domain, remove it there.",
}
# Outcomes after which the admin should look at Cronofy's own list of authorizations.
CHECK_UPSTREAM = (NOT_REVOKED, UNIDENTIFIED)


def give_back_code(attempt: ConsentAttempt, code: str | None) -> str | None:
    """Exchange a superseded attempt's code and revoke what it granted; return what happened.

    None when nothing was issued: a code Cronofy no longer accepts (already used, expired) left
    nothing to revoke.
    """
    if not code:
        return None
    try:
        client = upstream.client_for(attempt.data_center, retry=GIVE_BACK_RETRY)
    except upstream.UpstreamConfigError:
        return None
    with client:
        try:
            tokens = client.exchange_code(code, attempt.redirect_uri)
        except CronofyError:
            return None
        return give_back_tokens(attempt, tokens, client=client)


def give_back_tokens(attempt: ConsentAttempt, tokens: TokenSet, sub: str | None = None, *, client=None) -> str:
    """Revoke the authorization behind tokens unless a connection relies on its service account."""
    if client is None:
        with upstream.client_for(attempt.data_center, retry=GIVE_BACK_RETRY) as own:
            return give_back_tokens(attempt, tokens, sub, client=own)
    service_account_id = tokens.service_account_id or sub or _sub(client, tokens)
    if service_account_id is None:
        return UNIDENTIFIED  # dropped rather than revoked: they might belong to a connection's account
    if is_in_use(service_account_id):
        return KEPT
    try:
        client.revoke(token=tokens.refresh_token or tokens.access_token)
    except CronofyError as exc:
        log.warning("could not revoke a superseded consent's service account: %s", exc.error_key or exc)
        return NOT_REVOKED
    log.info("revoked service account %s from a superseded consent attempt %s", service_account_id, attempt.id)
    return REVOKED


def _sub(client, tokens: TokenSet) -> str | None:
    try:
        return client.userinfo(tokens.access_token).sub
    except CronofyError:
        return None


def describe(outcome: str | None, data_center: str) -> tuple[str | None, str | None]:
    """Return (the sentence for the refusal page, Cronofy's authorizations page when the admin must act)."""
    if outcome is None:
        return None, None
    return TEXTS[outcome], authorizations_page(data_center) if outcome in CHECK_UPSTREAM else None
