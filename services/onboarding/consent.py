"""The trip to Cronofy's consent page and back (§3.1, §3.2, §3.8): a single-use state, then the outcome.

`begin_consent` records a `ConsentAttempt` holding the SHA-256 of a fresh random `state` and exactly
what is asked for; the browser session keeps the state itself (the view does that through Authlib).
On the way back, `claim_consent` uses the attempt up with a conditional UPDATE, so a replayed or
double-delivered reply can never be processed twice, and `complete_consent` exchanges the code,
reads UserInfo with the new token and records the connection. Every failure ends in a
`ConsentProblem` that says what happened and where to go next; nothing is half-stored.

Revoking the setup link or discarding the wizard ends the attempts still under way (their outcome
becomes withdrawn or discarded). A reply for an ended attempt, or one whose link or wizard is gone,
is refused before the code is exchanged, and once more, under the rows' locks, just before the
connection would be recorded, so a revoke that lands during the exchange still wins.
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
from services.connections import connections
from services.cronofy import CronofyError, InvalidGrantError, RetryPolicy, UnavailableError
from services.onboarding import wizard as wizards
from services.onboarding.catalog import PROVIDERS
from services.onboarding.setup_links import mark_used
from services.platform import audit, upstream

log = logging.getLogger(__name__)

DEFAULT_CONSENT_TTL_MINUTES = 30
# UserInfo is an idempotent GET, but the admin is waiting: one retry at most.
USERINFO_RETRY = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0)


@dataclass(frozen=True)
class ProblemText:
    title: str
    message: str
    status: int
    retry_step: str | None  # the wizard step that offers a way forward, None when the state is unusable
    final: bool = False  # the setup behind the attempt is gone: there is no way back to offer


PROBLEMS: dict[str, ProblemText] = {
    "missing_state": ProblemText(
        "This reply cannot be matched", "The answer from the consent page carried no state, so it cannot be matched "
        "to a connection you started. Nothing was connected. Start the connection again from the wizard.", 400, None),
    "unknown_state": ProblemText(
        "This reply does not belong to a connection you started", "The answer from the consent page does not match "
        "any connection started from this console, so it was ignored. Nothing was connected.", 400, None),
    "other_session": ProblemText(
        "This reply belongs to another browser", "The connection was started in another browser or session, so this "
        "browser cannot finish it. Nothing was connected here; start the connection again from this browser.", 400,
        "review"),
    "used_state": ProblemText(
        "This reply was already handled", "This answer from the consent page has already been processed once; it "
        "cannot be used again.", 409, "review"),
    "expired_state": ProblemText(
        "The connection attempt expired", "Too much time passed between leaving for the consent page and coming "
        "back, so the attempt expired. Nothing was connected. Start the connection again.", 410, "review"),
    "denied": ProblemText(
        "The connection was declined", "The administrator chose Deny on the consent page, so nothing was connected. "
        "If that was a mistake, connect again. If your administrator is unsure what is being asked for, share the "
        "setup checklist and the permissions page with them, or send them a setup link.", 200, "review"),
    "invalid_scope": ProblemText(
        "Cronofy refused the requested permissions", "Cronofy did not accept the permissions this console asked for, "
        "so nothing was connected. Go back to the permissions step, choose one of the presets and try again; if it "
        "happens again, contact the vendor's support (the attempt has been logged).", 200, "scopes"),
    "refused": ProblemText(
        "The consent page reported an error", "The consent page sent the administrator back with an error, so nothing "
        "was connected. Try again in a few minutes; if it keeps happening, contact the vendor's support.", 200,
        "review"),
    "exchange_failed": ProblemText(
        "The approval could not be completed", "Cronofy no longer accepts this approval: it was already used or more "
        "than ten minutes passed. Nothing was connected. Connect again; it only takes the consent page once more.",
        400, "review"),
    "timed_out": ProblemText(
        "Cronofy did not answer in time", "Cronofy took too long to confirm the approval, so the console stopped "
        "waiting. Nothing was saved. Wait a few minutes and connect again.", 504, "review"),
    "unavailable": ProblemText(
        "Cronofy is not reachable", "Cronofy could not be reached or answered with an error while confirming the "
        "approval. Nothing was saved. Wait a few minutes and connect again.", 502, "review"),
    "upstream_error": ProblemText(
        "Cronofy refused to complete the connection", "Cronofy refused the request that completes the connection. "
        "Nothing was saved. Contact the vendor's support; the attempt has been logged.", 502, "review"),
    "bad_data_center": ProblemText(
        "Unknown data center", "The data center chosen for this connection is not one Cronofy has. Go back to the "
        "first step and choose your organization's data center.", 400, "provider"),
    "wizard_closed": ProblemText(
        "This setup is closed", "The wizard this connection belongs to was finished or discarded. Start a new one to "
        "connect calendars.", 409, None),
    "link_withdrawn": ProblemText(
        "This setup link was withdrawn", "This setup link was withdrawn while the consent page was open, so the "
        "approval was not used. Nothing was connected or changed. Ask whoever sent the link for a new one.", 410, None,
        final=True),
    "link_expired": ProblemText(
        "This setup link has expired", "This setup link expired before the consent page sent you back, so the "
        "approval was not used. Nothing was connected or changed. Ask whoever sent the link for a new one.", 410,
        None, final=True),
    "setup_finished": ProblemText(
        "This setup is already finished", "The calendars of this setup were connected another way while the consent "
        "page was open, so this approval was not used. Nothing was changed.", 409, None, final=True),
    "wizard_discarded": ProblemText(
        "This setup was discarded", "This setup was discarded while the consent page was open, so the approval was "
        "not used. Nothing was connected or changed. To connect calendars, start a new setup in the console, or ask "
        "whoever sent you the link for a new one.", 410, None, final=True),
}
REDIRECT_ERRORS = {"access_denied": "denied", "invalid_scope": "invalid_scope"}
# Outcomes that revoking the link or discarding the wizard give an attempt still under way, and back.
ENDED_OUTCOMES = {"withdrawn": "link_withdrawn", "discarded": "wizard_discarded"}
ENDED_KINDS = {kind: outcome for outcome, kind in ENDED_OUTCOMES.items()}
LINK_GONE = {"revoked": "link_withdrawn", "expired": "link_expired", "used": "setup_finished"}


class ConsentProblem(Exception):
    """The consent flow ended without a connection; `text` says so in words, `attempt` may be None."""

    def __init__(self, kind: str, attempt: ConsentAttempt | None = None):
        self.kind = kind
        self.text = PROBLEMS[kind]
        self.attempt = attempt
        super().__init__(self.text.title)

    @property
    def wizard(self) -> WizardSession | None:
        return self.attempt.wizard_session if self.attempt is not None else None


@dataclass(frozen=True)
class ConsentStart:
    """What the view needs to send the browser off: the state (kept only in the session) and the attempt."""

    state: str
    attempt: ConsentAttempt


@dataclass(frozen=True)
class ConsentResult:
    attempt: ConsentAttempt
    outcome: connections.ConnectionOutcome


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
    blocked = wizards.blocked_at(wizard, "review")
    if blocked:
        raise wizards.WizardError(blocked[1], step=blocked[0])
    try:
        upstream.upstream(wizard.data_center)
    except upstream.UpstreamConfigError:
        raise ConsentProblem("bad_data_center") from None
    if not wizards.mark_connecting(wizard):  # a discard that committed meanwhile wins
        raise ConsentProblem("wizard_closed")
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
    _take_over(attempt)
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


def _take_over(attempt: ConsentAttempt) -> None:
    """Make the attempt the one that connects, unless revoking or discarding ended it during the exchange.

    The attempt's row is taken first (revoke and discard take attempts before links and wizards),
    then the wizard's and the link's rows are read again under lock. The tokens just issued are
    dropped, not revoked: revoking could end an authorization a connection already relies on (§3.7.1).

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
