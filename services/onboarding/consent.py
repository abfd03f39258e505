"""The trip to Cronofy's consent page and back (§3.1, §3.2, §3.8): a single-use state, then the outcome.

`begin_consent` records a `ConsentAttempt` holding the SHA-256 of a fresh random `state` and exactly
what is asked for; the browser session keeps the state itself (the view does that through Authlib).
On the way back, `claim_consent` uses the attempt up with a conditional UPDATE, so a replayed or
double-delivered reply can never be processed twice, and `complete_consent` exchanges the code,
reads UserInfo with the new token and records the connection. Every failure ends in a
`ConsentProblem` that says what happened and where to go next; nothing is half-stored.

Only the newest attempt of a wizard may complete: pressing Connect again supersedes the attempts
still under way, and an approval that comes back on one of them is refused and handed back to
Cronofy (`stale_consent`). Revoking the setup link or discarding the wizard ends the attempts still
under way too (their outcome becomes withdrawn or discarded). A reply for an ended attempt, or
one whose link or wizard is gone, is refused before the code is exchanged, and once more, under
the rows' locks, just before the connection would be recorded, so a revoke that lands during the
exchange still wins.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from extensions import db
from models.base import utcnow
from models.onboarding import ConsentAttempt, SetupLink, WizardSession
from services.connections import connections, replacement
from services.cronofy import CronofyError, InvalidGrantError, RetryPolicy, UnavailableError
from services.onboarding import stale_consent
from services.onboarding import wizard as wizards
from services.onboarding.catalog import PROVIDERS
from services.onboarding.consent_problems import (  # the problems are re-exported: views use consent.*
    ENDED_KINDS,
    ENDED_OUTCOMES,
    LINK_GONE,
    PROBLEMS,
    REDIRECT_ERRORS,
    ConsentProblem,
    ProblemText,
)
from services.onboarding.setup_links import mark_used
from services.platform import audit, upstream

log = logging.getLogger(__name__)

DEFAULT_CONSENT_TTL_MINUTES = 30
# UserInfo is an idempotent GET, but the admin is waiting: one retry at most.
USERINFO_RETRY = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0)


@dataclass(frozen=True)
class ConsentStart:
    """What the view needs to send the browser off: the state (kept only in the session) and the attempt."""

    state: str
    attempt: ConsentAttempt


@dataclass(frozen=True)
class ConsentResult:
    attempt: ConsentAttempt
    outcome: connections.ConnectionOutcome

    @property
    def replaced(self) -> replacement.ReplacedServiceAccount | None:
        """The service account the connection held before this consent replaced it, if it did."""
        return self.outcome.replaced


def hash_state(state: str) -> str:
    """Return the SHA-256 under which a state is recorded."""
    return hashlib.sha256(state.encode()).hexdigest()


def _ttl() -> timedelta:
    return timedelta(minutes=current_app.config.get("CONSENT_STATE_TTL_MINUTES", DEFAULT_CONSENT_TTL_MINUTES))


def begin_consent(
    wizard: WizardSession, *, redirect_uri: str, actor=None, setup_link: SetupLink | None = None
) -> ConsentStart:
    """Record a new attempt for the wizard's current choices and return its fresh, single-use state.

    :raises ConsentProblem: wizard_closed, or bad_data_center for a data center Cronofy does not have.
    :raises wizards.WizardError: if the choices are not ready for review.
    """
    if not wizard.is_open:
        raise ConsentProblem("wizard_closed")
    if wizard.data_center != wizard.organization.data_center:
        wizard.data_center = wizard.organization.data_center  # one data center per organization, whatever was saved
        db.session.flush()
    blocked = wizards.blocked_at(wizard, "review")
    if blocked:
        raise wizards.WizardError(blocked[1], step=blocked[0])
    try:
        upstream.upstream(wizard.data_center)
    except upstream.UpstreamConfigError:
        raise ConsentProblem("bad_data_center") from None
    if not wizards.mark_connecting(wizard):  # a discard that committed meanwhile wins
        raise ConsentProblem("wizard_closed")
    # Only the newest attempt may complete: an approval on an older page must not swap the service account.
    wizards.end_consent_attempts(ConsentAttempt.wizard_session_id == wizard.id, "superseded")
    state = secrets.token_urlsafe(32)
    attempt = ConsentAttempt(
        organization_id=wizard.organization_id, wizard_session_id=wizard.id,
        setup_link_id=setup_link.id if setup_link else None, started_by_id=getattr(actor, "id", None),
        state_hash=hash_state(state), provider=wizard.provider, data_center=wizard.data_center,
        scope=wizard.scope, delegated_scope=wizard.delegated_scope, redirect_uri=redirect_uri,
        expires_at=utcnow() + _ttl(),
    )
    db.session.add(attempt)
    db.session.flush()
    return ConsentStart(state=state, attempt=attempt)


def find_attempt(state: str | None) -> ConsentAttempt | None:
    """Return the attempt a state was issued for, or None for a missing or forged state."""
    if not state:
        return None
    return db.session.scalar(select(ConsentAttempt).where(ConsentAttempt.state_hash == hash_state(state)))


def claim_consent(state: str | None) -> ConsentAttempt:
    """Use up the attempt behind state, exactly once even under concurrent replies; the caller commits.

    :raises ConsentProblem: missing_state, unknown_state, used_state, expired_state, or (the setup
        behind the attempt is gone) link_withdrawn, link_expired, setup_finished or wizard_discarded.
    """
    if not state:
        raise ConsentProblem("missing_state")
    attempt = find_attempt(state)
    if attempt is None:
        raise ConsentProblem("unknown_state")
    if attempt.used_at is not None:
        raise ConsentProblem("used_state", attempt)
    if ended := why_ended(attempt):
        raise ConsentProblem(ended, attempt)
    if attempt.expires_at <= utcnow():
        raise ConsentProblem("expired_state", attempt)
    claimed = db.session.execute(
        update(ConsentAttempt)
        .where(ConsentAttempt.id == attempt.id, ConsentAttempt.used_at.is_(None), ConsentAttempt.outcome == "pending")
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(attempt)
    if claimed.rowcount != 1:
        raise ConsentProblem(ENDED_OUTCOMES.get(attempt.outcome, "used_state"), attempt)
    return attempt


def why_ended(attempt: ConsentAttempt) -> str | None:
    """Return the problem kind when the setup behind the attempt is gone (link or wizard), else None."""
    if attempt.outcome in ENDED_OUTCOMES:
        return ENDED_OUTCOMES[attempt.outcome]
    wizard, link = attempt.wizard_session, attempt.setup_link
    if wizard.status == "abandoned":
        return "wizard_discarded"
    if link is None:
        return None  # an admin's own attempt may finish a wizard a colleague completed meanwhile
    if link.status in LINK_GONE:
        return LINK_GONE[link.status]
    return None if wizard.is_open else "setup_finished"


def refuse_consent(attempt: ConsentAttempt, error: str, description: str | None = None) -> ConsentProblem:
    """Record an error redirect from the consent page (§3.1) and return the problem to show."""
    kind = REDIRECT_ERRORS.get(error, "refused")
    _record_failure(attempt, kind, error_key=error[:64] if error else None, description=description)
    return ConsentProblem(kind, attempt)


def complete_consent(attempt: ConsentAttempt, code: str | None) -> ConsentResult:
    """Exchange the code, read UserInfo with the new token and record the connection; the caller commits.

    :raises ConsentProblem: (already recorded on the attempt) when any of it fails.
    """
    if not code:
        raise _failed(attempt, "refused", "missing_code")
    try:
        client = upstream.client_for(attempt.data_center, retry=USERINFO_RETRY)
    except upstream.UpstreamConfigError:
        raise _failed(attempt, "bad_data_center") from None
    with client:
        tokens = _exchange(client, attempt, code)
        info = _userinfo(client, attempt, tokens)
    try:
        _take_over(attempt)
    except ConsentProblem as problem:
        if problem.kind == "superseded":  # a newer attempt started during the exchange
            problem.given_back = stale_consent.give_back_tokens(attempt, tokens, info.sub)
        raise
    wizard = attempt.wizard_session
    outcome = connections.record_connection(
        organization=attempt.organization, tokens=tokens, info=info, provider=attempt.provider,
        data_center=attempt.data_center, requested_scope=attempt.scope,
        requested_delegated_scope=attempt.delegated_scope, actor=attempt.started_by,
        reconnect=wizard.reconnect_connection,
    )
    attempt.connection_id = outcome.connection.id
    wizards.complete(wizard, outcome.connection)
    if attempt.setup_link is not None:
        mark_used(attempt.setup_link)
    db.session.flush()
    return ConsentResult(attempt=attempt, outcome=outcome)


def revoke_replaced(result: ConsentResult) -> replacement.RevocationResult | None:
    """Revoke upstream the service account this consent replaced; call it once the new one is committed, then commit."""
    if result.replaced is None:
        return None
    return replacement.revoke_replaced(result.outcome.connection, result.replaced, actor=result.attempt.started_by)


def _take_over(attempt: ConsentAttempt) -> None:
    """Make the attempt the one that connects, unless revoking or discarding ended it during the exchange.

    The attempt's row is taken first (revoke and discard take attempts before links and wizards),
    then the wizard's and the link's rows are read again under lock. The tokens just issued are
    dropped, not revoked: revoking could end an authorization a connection already relies on (§3.7.1)
    (a superseded attempt's are given back by the caller, unless a connection uses their account).

    :raises ConsentProblem: with only the attempt's outcome written, when the setup behind it is gone.
    """
    if not _settle(attempt, "connected"):
        raise ConsentProblem(ENDED_OUTCOMES.get(attempt.outcome, "used_state"), attempt)
    db.session.refresh(attempt.wizard_session, with_for_update=True)
    if attempt.setup_link is not None:
        db.session.refresh(attempt.setup_link, with_for_update=True)
    if ended := why_ended(attempt):
        attempt.outcome, attempt.error_key = ENDED_KINDS.get(ended, "failed"), ended
        db.session.flush()
        raise ConsentProblem(ended, attempt)


def _settle(attempt: ConsentAttempt, outcome: str, error_key: str | None = None) -> bool:
    """Give a pending attempt its outcome in one conditional UPDATE; return False if it had ended meanwhile."""
    settled = db.session.execute(
        update(ConsentAttempt)
        .where(ConsentAttempt.id == attempt.id, ConsentAttempt.outcome == "pending")
        .values(outcome=outcome, error_key=error_key)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(attempt)
    return settled.rowcount == 1


def _exchange(client, attempt: ConsentAttempt, code: str):
    try:
        return client.exchange_code(code, attempt.redirect_uri)
    except InvalidGrantError as exc:
        raise _failed(attempt, "exchange_failed", exc.error_key) from None
    except UnavailableError as exc:
        raise _failed(attempt, "timed_out" if exc.error_key == "timeout" else "unavailable", exc.error_key) from None
    except CronofyError as exc:
        raise _failed(attempt, "upstream_error", exc.error_key or f"http_{exc.status}") from None


def _userinfo(client, attempt: ConsentAttempt, tokens):
    try:
        return client.userinfo(tokens.access_token)
    except CronofyError as exc:
        # Without UserInfo we cannot tell which domain this is: give the authorization back rather
        # than keep tokens nobody can identify (§3.7.1 revoke; best effort).
        _revoke_quietly(client, tokens)
        kind = "timed_out" if exc.error_key == "timeout" else "unavailable"
        raise _failed(attempt, kind, f"userinfo_{exc.error_key or exc.status}") from None


def _revoke_quietly(client, tokens) -> None:
    try:
        client.revoke(token=tokens.refresh_token or tokens.access_token)
    except CronofyError as exc:
        log.warning("could not revoke an unidentified service-account authorization: %s", exc)


def _failed(attempt: ConsentAttempt, kind: str, error_key: str | None = None) -> ConsentProblem:
    _record_failure(attempt, kind, error_key=error_key)
    return ConsentProblem(kind, attempt)


def _record_failure(attempt: ConsentAttempt, kind: str, *, error_key: str | None, description: str | None = None):
    outcome = {"denied": "denied", "invalid_scope": "invalid_scope", "refused": "refused",
               "timed_out": "timed_out"}.get(kind, "failed")
    error_key = (error_key or kind)[:64]
    _settle(attempt, outcome, error_key)  # an attempt that revoking or discarding ended keeps that outcome
    wizard = attempt.wizard_session
    wizards.reopen_after_failure(wizard)
    details = {"kind": kind, "error": error_key, "wizard_id": wizard.id,
               "provider": attempt.provider, "data_center": attempt.data_center}
    if description:
        details["description"] = description[:300]
    if attempt.setup_link_id:
        details["setup_link_id"] = attempt.setup_link_id
    audit.record("connection.consent_failed", actor=attempt.started_by, organization=attempt.organization,
                 target=attempt, details=details)


def provider_hint(attempt: ConsentAttempt) -> str | None:
    """Return the upstream's name for the attempt's provider, to preselect it on the consent page (§3.1)."""
    chosen = PROVIDERS.get(attempt.provider)
    return chosen.upstream_name if chosen else None
