"""The connection wizard: start or resume it, save each step, and say which steps are open.

State lives in `WizardSession` rows, so an admin can leave and come back, and a colleague with a
setup link sees the same choices. Services flush; the views commit.

The data center is the organization's, chosen once when support created it (every Cronofy tenant
lives in exactly one data center, docs/cronofy-api.md §1): the wizard shows it and copies it, and
refuses another one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from extensions import db
from models.base import utcnow
from models.connection import Connection
from models.onboarding import WIZARD_STEPS, ConsentAttempt, WizardSession
from models.organization import Organization
from services.onboarding import catalog

OPEN_STATUSES = ("draft", "connecting")

STEP_LABELS = {
    "provider": "Calendar service",
    "checklist": "Setup checklist",
    "scopes": "Permissions",
    "review": "Review and connect",
    "verify": "Verify",
}


class WizardError(ValueError):
    """A step cannot be saved or entered; `problems` say why and `step` where to go instead."""

    def __init__(self, message: str, *, problems: list[catalog.Problem] | None = None, step: str | None = None):
        super().__init__(message)
        self.problems = problems or []
        self.step = step


@dataclass(frozen=True)
class StepInfo:
    """One step of the progress bar."""

    key: str
    number: int
    label: str
    state: str  # done, current, todo or locked
    reachable: bool


def open_wizard(organization: Organization, reconnect: Connection | None = None) -> WizardSession | None:
    """Return the organization's newest open wizard for this target (a new connection or a reconnect)."""
    target = (
        WizardSession.reconnect_connection_id.is_(None)
        if reconnect is None
        else WizardSession.reconnect_connection_id == reconnect.id
    )
    return db.session.scalar(
        select(WizardSession)
        .where(WizardSession.organization_id == organization.id, WizardSession.status.in_(("draft", "connecting")), target)
        .order_by(WizardSession.updated_at.desc(), WizardSession.id.desc())
        .limit(1)
    )


def start_wizard(organization: Organization, *, actor, reconnect: Connection | None = None) -> WizardSession:
    """Resume the open wizard for this target, or start one (prefilled from the connection on a reconnect).

    :raises WizardError: if reconnect belongs to another organization.
    """
    if reconnect is not None and reconnect.organization_id != organization.id:
        raise WizardError("That connection belongs to another organization.")
    wizard = open_wizard(organization, reconnect)
    if wizard is not None:
        return wizard
    wizard = WizardSession(
        organization_id=organization.id,
        created_by_id=getattr(actor, "id", None),
        data_center=organization.data_center,
        checklist_done=[],
        scope="",
        delegated_scope="",
    )
    if reconnect is not None:
        _prefill_from(wizard, reconnect)
    db.session.add(wizard)
    db.session.flush()
    return wizard


def _prefill_from(wizard: WizardSession, connection: Connection) -> None:
    # The data center stays the organization's, even for a connection recorded elsewhere before.
    wizard.reconnect_connection_id = connection.id
    wizard.provider = connection.provider if catalog.provider(connection.provider) else None
    wizard.scope = catalog.normalise(connection.requested_scope, catalog.SERVICE_ACCOUNT_SCOPES)
    wizard.delegated_scope = catalog.normalise(connection.requested_delegated_scope, catalog.DELEGATED_SCOPES)
    wizard.step = "review" if not blocked_at(wizard, "review") else "provider"


def require_open(wizard: WizardSession) -> None:
    """:raises WizardError: if the wizard was completed or discarded and can no longer change."""
    if wizard.status == "completed":
        raise WizardError("This wizard has already connected its calendars.", step="verify")
    if wizard.status == "abandoned":
        raise WizardError("This wizard was discarded. Start a new one to connect calendars.")


def _advance(wizard: WizardSession, step: str) -> None:
    """Move the resume point forward to step (never back), and mark the wizard as a draft again."""
    if WIZARD_STEPS.index(step) > WIZARD_STEPS.index(wizard.step):
        wizard.step = step
    wizard.status = "draft"
    db.session.flush()


def save_provider(wizard: WizardSession, *, provider: str | None, data_center: str | None = None) -> None:
    """Save the calendar service; changing it clears the ticked checklist. The data center stays the organization's.

    :raises WizardError: for an unknown provider, or a data center other than the organization's.
    """
    require_open(wizard)
    problems = [] if catalog.provider(provider) else [catalog.Problem("provider", "Choose one of the calendar services.")]
    fixed = wizard.organization.data_center
    if data_center and data_center != fixed:
        problems.append(catalog.Problem("data_center", data_center_fixed_message(fixed)))
    if problems:
        raise WizardError("Check the calendar service.", problems=problems)
    if wizard.provider != provider:
        wizard.checklist_done = []
    wizard.provider, wizard.data_center = provider, fixed
    _advance(wizard, "checklist")


def data_center_fixed_message(code: str) -> str:
    """Say that the organization's data center is fixed, and which one it is."""
    label = catalog.DATA_CENTERS.get(code, code)
    return (f"This organization's data center is {label} ({code.upper()}). It was chosen when the organization "
            "was created and cannot be changed in the wizard.")


def save_checklist(wizard: WizardSession, item_ids) -> None:
    """Save which checklist items are ticked (unknown ids are ignored); ticking is never required."""
    require_open(wizard)
    _require_reachable(wizard, "checklist")
    wizard.checklist_done = catalog.known_item_ids(wizard.provider, item_ids)
    _advance(wizard, "scopes")


def save_scopes(wizard: WizardSession, *, scope, delegated_scope) -> None:
    """Save the scopes if they can be requested together.

    :raises WizardError: with one problem per reason the combination cannot be used.
    """
    require_open(wizard)
    _require_reachable(wizard, "scopes")
    problems = catalog.validate_scopes(wizard.provider, scope, delegated_scope)
    if problems:
        raise WizardError("These permissions cannot be requested as they are.", problems=problems)
    wizard.scope = catalog.normalise(scope, catalog.SERVICE_ACCOUNT_SCOPES)
    wizard.delegated_scope = catalog.normalise(delegated_scope, catalog.DELEGATED_SCOPES)
    _advance(wizard, "review")


def apply_preset(wizard: WizardSession, preset_key: str) -> catalog.Preset:
    """Put a preset's scopes into the wizard (without moving on, so the admin can review them).

    :raises WizardError: for an unknown preset or one that does not fit the provider.
    """
    require_open(wizard)
    _require_reachable(wizard, "scopes")
    preset = next((p for p in catalog.presets_for(wizard.provider) if p.key == preset_key), None)
    if preset is None:
        raise WizardError("That preset does not exist for this calendar service.")
    wizard.scope = " ".join(preset.scope)
    wizard.delegated_scope = " ".join(preset.delegated_scope)
    wizard.status = "draft"
    db.session.flush()
    return preset


def _move(wizard: WizardSession, status: str, *, from_statuses: tuple[str, ...]) -> bool:
    """Change the wizard's status in one conditional UPDATE; return False if it was not in from_statuses."""
    moved = db.session.execute(
        update(WizardSession)
        .where(WizardSession.id == wizard.id, WizardSession.status.in_(from_statuses))
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(wizard)
    return moved.rowcount == 1


def mark_connecting(wizard: WizardSession) -> bool:
    """Record that a consent is under way; return False if the wizard was closed meanwhile."""
    return _move(wizard, "connecting", from_statuses=OPEN_STATUSES)


def reopen_after_failure(wizard: WizardSession) -> None:
    """Put a connecting wizard back to draft after a failed consent (a discarded one stays discarded)."""
    _move(wizard, "draft", from_statuses=("connecting",))


def end_consent_attempts(condition, outcome: str) -> None:
    """End the consent attempts matching condition that are still under way: their return changes nothing."""
    db.session.execute(
        update(ConsentAttempt).where(condition, ConsentAttempt.outcome == "pending").values(outcome=outcome)
    )


def discard(wizard: WizardSession) -> None:
    """Abandon an open wizard; its setup links and the consents still under way end with it.

    :raises WizardError: if it was completed or discarded, even by a request that finished meanwhile.
    """
    require_open(wizard)
    # The attempts first, then the wizard: the order in which a finishing consent takes them.
    end_consent_attempts(ConsentAttempt.wizard_session_id == wizard.id, "discarded")
    if not _move(wizard, "abandoned", from_statuses=OPEN_STATUSES):
        require_open(wizard)


def complete(wizard: WizardSession, connection: Connection) -> None:
    """Mark the wizard done with the connection it produced (idempotent for a second admin's success).

    :raises WizardError: for a discarded wizard, which a late consent must never bring back.
    """
    if wizard.status == "abandoned":
        raise WizardError("This wizard was discarded. Start a new one to connect calendars.")
    wizard.connection_id = connection.id
    wizard.step = "verify"
    if wizard.status != "completed":
        wizard.status = "completed"
        wizard.completed_at = utcnow()
    db.session.flush()


def blocked_at(wizard: WizardSession, step: str) -> tuple[str, str] | None:
    """Return (the step to go to, why) when step cannot be entered yet, else None."""
    if step == "provider":
        return None
    if catalog.validate_data_center(wizard.data_center):
        return "provider", ("This organization's data center is not one Cronofy has, so nothing can be connected. "
                            "Ask the vendor's support to correct it.")
    if not catalog.provider(wizard.provider):
        return "provider", "Choose the calendar service first."
    if step in ("checklist", "scopes"):
        return None
    if step == "review" and catalog.validate_scopes(wizard.provider, wizard.scope, wizard.delegated_scope):
        return "scopes", "Choose permissions that can be requested before reviewing."
    if step == "review":
        return None
    if wizard.status != "completed" or wizard.connection_id is None:
        return "review", "Connect first: the verification follows the consent page."
    return None


def _require_reachable(wizard: WizardSession, step: str) -> None:
    blocked = blocked_at(wizard, step)
    if blocked:
        raise WizardError(blocked[1], step=blocked[0])


def resume_step(wizard: WizardSession) -> str:
    """Return the step to show someone coming back to the wizard."""
    if wizard.status == "completed":
        return "verify"
    step = wizard.step if wizard.step in WIZARD_STEPS else "provider"
    blocked = blocked_at(wizard, step)
    return blocked[0] if blocked else step


def progress(wizard: WizardSession, current: str) -> list[StepInfo]:
    """Describe every step for the progress bar, relative to the step being shown."""
    furthest = WIZARD_STEPS.index(resume_step(wizard))
    steps = []
    for number, key in enumerate(WIZARD_STEPS, start=1):
        reachable = blocked_at(wizard, key) is None
        if key == current:
            state = "current"
        elif not reachable:
            state = "locked"
        else:
            state = "done" if WIZARD_STEPS.index(key) < furthest or wizard.status == "completed" else "todo"
        steps.append(StepInfo(key, number, STEP_LABELS[key], state, reachable))
    return steps


def missing_checklist_items(wizard: WizardSession) -> list[catalog.ChecklistItem]:
    """Return the required checklist items the admin has not ticked (a reminder, never a block)."""
    chosen = catalog.provider(wizard.provider)
    if chosen is None:
        return []
    done = set(wizard.checklist_done or ())
    return [item for item in chosen.checklist if not item.optional and item.id not in done]
