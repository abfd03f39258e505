"""Bulk runs: start, pause, resume, cancel, continue after the canary, retry failures, and progress.

Pattern for callers (views, CLI): call one of these functions, `db.session.commit()`, then
`jobs.enqueue_pump(run.id)` so a worker picks the run up. Services never enqueue: a job enqueued
before the commit could look for rows that are not there yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, exists, func, select, update

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.engine import attempts, run_clock
from services.mailboxes import failure_guide
from services.mailboxes.mailbox_states import can_transition, transition
from services.onboarding.catalog import expand_scope
from services.platform import audit

CHUNK = 1000
AUTHORIZABLE = ("new", "failed", "needs_attention", "revoked")
REVOCABLE = ("authorized", "needs_attention")
# Attempts the run worked through (cancelled ones were never sent): what its pace counts.
WORKED = ("authorized", "failed", "revoked")


class RunError(ValueError):
    """A run cannot be started or changed; the message says why, fit to show."""


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: counts per attempt status, pace and what it waits for."""

    status: str
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    done: int = 0
    fraction: float = 0.0
    # While running: the current wave's pace (what the time left follows); otherwise the run's average
    # over its active time (`rate_is_average`). Pauses count in neither.
    rate_per_minute: float = 0.0
    eta_seconds: int | None = None
    rate_is_average: bool = False
    active_seconds: float = 0.0
    current_wave: int = 1
    waves: int = 1
    canary_size: int | None = None
    pause_reason: str | None = None

    @property
    def percent(self) -> int:
        """Return the done fraction as a whole percentage."""
        return int(self.fraction * 100)


def _check_scope(connection: Connection, scope: str) -> str:
    scope = " ".join(scope.split())
    if not scope:
        raise RunError("Choose the access to request for the mailboxes.")
    granted = connection.granted_delegated_scope or connection.requested_delegated_scope or ""
    if not expand_scope(scope) <= expand_scope(granted):
        raise RunError(
            f"The connection may only hand out “{granted or 'nothing'}”; “{scope}” asks for more. "
            "Choose a narrower access, or reconnect with a wider delegated scope."
        )
    return scope


def _check_connection(organization: Organization, connection: Connection) -> None:
    if connection.organization_id != organization.id:
        raise RunError("That connection belongs to another organization.")
    if connection.status != "active":
        raise RunError(f"The connection to {connection.domain or 'the directory'} is "
                       f"{connection.status.replace('_', ' ')}; reconnect it before starting a run.")


def _candidates(organization: Organization, mailbox_ids_select: Select, statuses, after_id: int):
    live = exists().where(AuthorizationAttempt.live_mailbox_id == Mailbox.id)
    return db.session.execute(
        select(Mailbox.id, Mailbox.status)
        .where(Mailbox.id.in_(mailbox_ids_select), Mailbox.organization_id == organization.id,
               Mailbox.status.in_(statuses), Mailbox.id > after_id, ~live)
        .order_by(Mailbox.id).limit(CHUNK)
    ).all()


def _fill(run: AuthorizationRun, organization, mailbox_ids_select, statuses, *, actor) -> int:
    """Create the run's attempts chunk by chunk (memory stays flat) and queue their mailboxes."""
    created, after_id = 0, 0
    while chunk := _candidates(organization, mailbox_ids_select, statuses, after_id):
        after_id = chunk[-1][0]
        inserted = attempts.insert_attempts(run, chunk, created)
        if run.action == "authorize":
            attempts.queue_mailboxes(organization.id, [(m, s) for m, s in chunk if m in inserted],
                                     actor=actor, summary=f"Queued for authorization (run #{run.id})")
        created += len(inserted)
    return created


def start_run(
    organization: Organization,
    *,
    connection: Connection,
    mailbox_ids_select: Select,
    scope: str,
    actor,
    source: str,
    canary_size: int | None = None,
    auto_continue: bool = True,
    failure_threshold: float = 0.2,
) -> AuthorizationRun:
    """Create a bulk authorization over the selected mailboxes that are not authorized or in flight.

    :raises RunError: bad scope, inactive connection, bad rollout settings, or nothing to authorize.
    """
    _check_connection(organization, connection)
    scope = _check_scope(connection, scope)
    if canary_size is not None and canary_size < 1:
        raise RunError("The canary wave needs at least one mailbox.")
    if not 0 <= failure_threshold <= 1:
        raise RunError("The failure threshold must be between 0% and 100%.")
    run = AuthorizationRun(
        organization_id=organization.id, connection_id=connection.id, created_by_id=getattr(actor, "id", None),
        action="authorize", status="running", scope=scope, source=source[:200], canary_size=canary_size,
        auto_continue=auto_continue, failure_threshold=failure_threshold, current_wave=1,
    )
    run_clock.start(run)
    db.session.add(run)
    db.session.flush()
    run.total = _fill(run, organization, mailbox_ids_select, AUTHORIZABLE, actor=actor)
    if run.total == 0:
        raise RunError("Nothing to authorize: every selected mailbox is already authorized or in a running batch.")
    if canary_size and canary_size >= run.total:
        run.canary_size = None  # one wave holds everything: no canary to pause after
    audit.record("run.started", actor=actor, organization=organization, target=run,
                 details={"total": run.total, "scope": scope, "source": run.source, "canary_size": run.canary_size})
    run_clock.announce(run, "run.started")
    db.session.flush()
    return run


def start_revoke_run(organization: Organization, *, connection: Connection, mailbox_ids_select: Select, actor,
                     source: str) -> AuthorizationRun:
    """Create a bulk revocation of the selected authorized mailboxes, paced by the same budget.

    :raises RunError: when none of the selected mailboxes holds an authorization.
    """
    if connection.organization_id != organization.id:
        raise RunError("That connection belongs to another organization.")
    run = AuthorizationRun(
        organization_id=organization.id, connection_id=connection.id, created_by_id=getattr(actor, "id", None),
        action="revoke", status="running", scope="", source=source[:200], auto_continue=True,
        failure_threshold=1.0, current_wave=1,
    )
    run_clock.start(run)
    db.session.add(run)
    db.session.flush()
    run.total = _fill(run, organization, mailbox_ids_select, REVOCABLE, actor=actor)
    if run.total == 0:
        raise RunError("Nothing to revoke: none of the selected mailboxes is authorized.")
    audit.record("run.revoke_started", actor=actor, organization=organization, target=run,
                 details={"total": run.total, "source": run.source})
    run_clock.announce(run, "run.started")
    db.session.flush()
    return run


def pause_run(run: AuthorizationRun, *, actor, reason: str | None = None) -> None:
    """Stop sending new requests; callbacks of requests already sent are still exchanged."""
    if run.status not in ("running", "awaiting_confirmation"):
        raise RunError(f"This run is {_words(run.status)}; only a running run can be paused.")
    run.pause_reason = reason or "Paused by an administrator."
    run_clock.set_status(run, "paused")
    audit.record("run.paused", actor=actor, organization=run.organization, target=run, details={"reason": reason})
    db.session.flush()


def resume_run(run: AuthorizationRun, *, actor) -> None:
    """Continue a paused run (after an automatic pause, the admin's resume accepts the wave's result)."""
    if run.status != "paused":
        raise RunError(f"This run is {_words(run.status)}; only a paused run can be resumed.")
    _advance_if_wave_done(run)
    run.pause_reason = None
    run_clock.set_status(run, "running")
    audit.record("run.resumed", actor=actor, organization=run.organization, target=run)
    db.session.flush()


def confirm_next_wave(run: AuthorizationRun, *, actor) -> None:
    """Start the next wave of a run that waits for confirmation after its canary."""
    if run.status != "awaiting_confirmation":
        raise RunError("This run is not waiting for a confirmation.")
    _advance_if_wave_done(run)
    run.pause_reason = None
    run_clock.set_status(run, "running")
    audit.record("run.wave_confirmed", actor=actor, organization=run.organization, target=run,
                 details={"wave": run.current_wave})
    db.session.flush()


def _advance_if_wave_done(run: AuthorizationRun) -> None:
    if live_count(run, wave=run.current_wave) == 0 and has_later_wave(run):
        run.current_wave += 1
        run_clock.start_wave(run)


def cancel_run(run: AuthorizationRun, *, actor) -> int:
    """Cancel what has not been sent yet and put those mailboxes back; return how many were cancelled.

    Requests already sent still complete: their callbacks are exchanged as usual.
    """
    if run.status in ("cancelled", "completed"):
        raise RunError(f"This run is already {_words(run.status)}.")
    cancelled = 0
    while batch := db.session.scalars(
        select(AuthorizationAttempt).where(AuthorizationAttempt.run_id == run.id,
                                           AuthorizationAttempt.status == "queued").limit(CHUNK)
    ).all():
        for attempt in batch:
            _cancel_attempt(attempt, actor=actor)
        cancelled += len(batch)
        db.session.flush()
    run.finished_at, run.pause_reason = utcnow(), None
    run_clock.set_status(run, "cancelled")
    audit.record("run.cancelled", actor=actor, organization=run.organization, target=run,
                 details={"cancelled": cancelled})
    db.session.flush()
    return cancelled


def _cancel_attempt(attempt: AuthorizationAttempt, *, actor) -> None:
    attempts.end(attempt, "cancelled")
    mailbox = db.session.get(Mailbox, attempt.mailbox_id)
    if mailbox is None or mailbox.status != "queued":
        return
    back_to = attempt.prior_status if can_transition("queued", attempt.prior_status or "") else "new"
    transition(mailbox, back_to, kind="cancelled", actor=actor, state=attempt.state, announce=False,
               summary=f"Run #{attempt.run_id} cancelled before this mailbox was requested")


def retry_failed(run: AuthorizationRun, *, actor, include_unfixable: bool = True) -> int:
    """Give the run's failed mailboxes a new attempt in the current wave; return how many.

    Without `include_unfixable`, failures whose cause a retry as it is cannot fix (failure_guide:
    not found, suspended, ...) are left out.
    """
    if run.action != "authorize":
        raise RunError("Only authorization runs can retry failures.")
    failed = (select(AuthorizationAttempt.mailbox_id)
              .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status == "failed",
                     AuthorizationAttempt.is_retried.is_(False)))
    if not include_unfixable:
        key = AuthorizationAttempt.error_key
        failed = failed.where(key.is_(None) | key.not_in(failure_guide.unfixable_keys()))
    created, after_id = 0, 0
    while chunk := _candidates(run.organization, failed, AUTHORIZABLE, after_id):
        after_id = chunk[-1][0]
        inserted = attempts.insert_attempts(run, chunk, 0)
        _mark_retried(run, inserted)
        attempts.queue_mailboxes(run.organization_id, [(m, s) for m, s in chunk if m in inserted],
                                 actor=actor, summary=f"Queued again (retry in run #{run.id})")
        created += len(inserted)
    if created:
        _place_retries_in_current_wave(run)
        run.finished_at, run.pause_reason = None, None
        run_clock.set_status(run, "running")
        run_clock.start_wave(run)
        audit.record("run.retried", actor=actor, organization=run.organization, target=run,
                     details={"retried": created})
    db.session.flush()
    return created


def _mark_retried(run: AuthorizationRun, mailbox_ids: set[int]) -> None:
    if mailbox_ids:
        db.session.execute(
            update(AuthorizationAttempt)
            .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status == "failed",
                   AuthorizationAttempt.mailbox_id.in_(mailbox_ids))
            .values(is_retried=True).execution_options(synchronize_session=False)
        )


def _place_retries_in_current_wave(run: AuthorizationRun) -> None:
    # Retries go out now: the wave being sent, or the last one once every wave is done.
    last_wave = db.session.scalar(select(func.max(AuthorizationAttempt.wave))
                                  .where(AuthorizationAttempt.run_id == run.id,
                                         AuthorizationAttempt.status != "queued")) or 1
    wave = max(run.current_wave, last_wave)
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status == "queued",
               AuthorizationAttempt.send_tries == 0, AuthorizationAttempt.wave < wave)
        .values(wave=wave).execution_options(synchronize_session=False)
    )
    run.current_wave = wave


def live_count(run: AuthorizationRun, *, wave: int | None = None) -> int:
    """Return how many of the run's attempts are still live (in the given wave, if any)."""
    query = select(func.count(AuthorizationAttempt.id)).where(
        AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status.in_(attempts.LIVE))
    if wave is not None:
        query = query.where(AuthorizationAttempt.wave == wave)
    return db.session.scalar(query) or 0


def has_later_wave(run: AuthorizationRun) -> bool:
    """Return whether attempts wait in a wave after the current one."""
    return db.session.scalar(
        select(func.count(AuthorizationAttempt.id)).where(
            AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.wave > run.current_wave,
            AuthorizationAttempt.status == "queued")
    ) > 0


def run_progress(run: AuthorizationRun) -> RunProgress:
    """Return the run's counts per status (one grouped query), its pace and the time left."""
    rows = db.session.execute(
        select(AuthorizationAttempt.status, func.count(AuthorizationAttempt.id))
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.is_retried.is_(False))
        .group_by(AuthorizationAttempt.status)
    ).all()
    return progress_from(run, dict(rows), wave_finished(run))


def wave_finished_query(run: AuthorizationRun):
    """Return the count of attempts worked through (not cancelled) since the current wave's clock started."""
    query = select(func.count(AuthorizationAttempt.id)).where(
        AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status.in_(WORKED))
    if run.wave_started_at is not None:
        query = query.where(AuthorizationAttempt.finished_at >= run.wave_started_at)
    return query


def wave_finished(run: AuthorizationRun) -> int:
    """Return how many attempts were worked through since the current wave's clock started."""
    return db.session.scalar(wave_finished_query(run)) or 0


def progress_from(run: AuthorizationRun, found: dict[str, int], finished_in_wave: int, now=None) -> RunProgress:
    """Return the progress of a run from its counts per status and what its current wave finished.

    While running, the rate is the current wave's (finished in the wave / the wave's running time) and the
    time left follows it; otherwise it is the run's average over its active time.
    """
    counts = {status: 0 for status in (*attempts.LIVE, *attempts.FINISHED)}
    counts.update(found)
    total = sum(counts.values())
    done = sum(counts[s] for s in attempts.FINISHED)
    now = now or utcnow()
    active = run_clock.active_seconds(run, now)
    if run.status == "running":
        rate = run_clock.wave_rate(finished_in_wave, run, now)
        eta = run_clock.seconds_left(total - done, rate)
    else:
        rate, eta = run_clock.per_minute(sum(counts[s] for s in WORKED), active), None
    return RunProgress(
        status=run.status, total=total, counts=counts, done=done, fraction=done / total if total else 1.0,
        rate_per_minute=rate, eta_seconds=eta, current_wave=run.current_wave, waves=2 if run.canary_size else 1,
        canary_size=run.canary_size, pause_reason=run.pause_reason, rate_is_average=run.status != "running",
        active_seconds=active,
    )


def runs_for(organization: Organization, *, limit: int = 50) -> list[AuthorizationRun]:
    """Return the organization's runs, newest first."""
    return list(db.session.scalars(
        select(AuthorizationRun).where(AuthorizationRun.organization_id == organization.id)
        .order_by(AuthorizationRun.created_at.desc(), AuthorizationRun.id.desc()).limit(limit)
    ))


def _words(status: str) -> str:
    return status.replace("_", " ")
