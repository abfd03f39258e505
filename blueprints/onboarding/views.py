"""The wizard's steps: one route and one form per step; the state is kept in the WizardSession row."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.converters import parse_id
from blueprints.onboarding import bp
from blueprints.onboarding.forms import (
    ChecklistForm,
    ConfirmForm,
    ConnectForm,
    PresetForm,
    ProviderForm,
    ScopesForm,
    SetupLinkForm,
    StartForm,
)
from extensions import db
from models.connection import Connection
from models.onboarding import WizardSession
from services.connections import connections
from services.onboarding import catalog, setup_links
from services.onboarding import wizard as wizards
from services.platform.tenancy import organization_or_404, scoped_or_404


def load_wizard(org_id: int, wizard_id: int):
    """Return (organization, wizard) if the signed-in user may see them, else 404."""
    organization = organization_or_404(org_id)
    return organization, scoped_or_404(WizardSession, wizard_id, organization)


def step_url(wizard: WizardSession, step: str) -> str:
    """Return the address of one step of a wizard."""
    return url_for(f"onboarding.{step}", org_id=wizard.organization_id, wizard_id=wizard.id)


def render_step(step: str, organization, wizard: WizardSession, status: int = 200, *, current: str | None = None,
                **context):
    """Render a step's template (or another wizard page shown in place of `current`) with the progress bar."""
    context.setdefault("progress", wizards.progress(wizard, current or step))
    html = render_template(f"onboarding/{step}.html", organization=organization, wizard=wizard, step=step,
                           provider=catalog.provider(wizard.provider), catalog=catalog, **context)
    return html, status


def _unavailable(wizard: WizardSession, step: str) -> tuple[str, str, str] | None:
    """Return (why, where to go, link text) when step cannot be shown for this wizard, else None."""
    if wizard.status == "completed" and step != "verify":
        return "This wizard has already connected its calendars.", step_url(wizard, "verify"), "See the result"
    if wizard.status == "abandoned":
        start_url = url_for("onboarding.start", org_id=wizard.organization_id)
        return "This wizard was discarded. Start a new one to connect calendars.", start_url, "Start again"
    blocked = wizards.blocked_at(wizard, step)
    if blocked:
        return blocked[1], step_url(wizard, blocked[0]), f"Go to {wizards.STEP_LABELS[blocked[0]].lower()}"
    return None


def guard_step(organization, wizard: WizardSession, step: str):
    """Stop a request for a step that is not open: explain it on GET, redirect with a message otherwise."""
    found = _unavailable(wizard, step)
    if found is None:
        return None
    message, target, label = found
    if request.method == "GET":
        return render_step("unavailable", organization, wizard, current=step, message=message, target=target,
                           target_label=label)
    flash(message, "warning")
    return redirect(target)


def _show_problems(form, exc: wizards.WizardError) -> None:
    db.session.rollback()
    for problem in exc.problems:
        field = getattr(form, problem.field, None)
        if field is not None:
            field.errors = [*field.errors, problem.message]
        else:
            flash(problem.message, "danger")
    if not exc.problems:
        flash(str(exc), "danger")


def _reconnect_target(organization) -> Connection | None:
    raw = request.values.get("reconnect", "")
    if not raw:
        return None
    connection_id = parse_id(raw)
    if connection_id is None:
        abort(404)
    return scoped_or_404(Connection, connection_id, organization)


@bp.get("/orgs/<int:org_id>/wizard")
@login_required
def start(org_id: int):
    organization = organization_or_404(org_id)
    reconnect = _reconnect_target(organization)
    draft = wizards.open_wizard(organization, reconnect)
    form = StartForm(reconnect=reconnect.id if reconnect else "")
    resume_url = step_url(draft, wizards.resume_step(draft)) if draft else None
    return render_template("onboarding/start.html", organization=organization, form=form, reconnect=reconnect,
                           draft=draft, resume_url=resume_url, connections=connections.list_for(organization),
                           catalog=catalog, wizard=None, step="start", progress=None)


@bp.post("/orgs/<int:org_id>/wizard")
@login_required
def create(org_id: int):
    organization = organization_or_404(org_id)
    reconnect = _reconnect_target(organization)
    if not StartForm().validate_on_submit():
        abort(400)
    wizard = wizards.start_wizard(organization, actor=current_user, reconnect=reconnect)
    db.session.commit()
    return redirect(step_url(wizard, wizards.resume_step(wizard)))


@bp.route("/orgs/<int:org_id>/wizard/<int:wizard_id>/provider", methods=["GET", "POST"])
@login_required
def provider(org_id: int, wizard_id: int):
    organization, wizard = load_wizard(org_id, wizard_id)
    if (stopped := guard_step(organization, wizard, "provider")) is not None:
        return stopped
    form = ProviderForm(data={"provider": wizard.provider})
    if form.validate_on_submit():
        try:
            # A data center posted by an older page is refused unless it is the organization's own.
            wizards.save_provider(wizard, provider=form.provider.data, data_center=request.form.get("data_center"))
        except wizards.WizardError as exc:
            _show_problems(form, exc)
        else:
            db.session.commit()
            return redirect(step_url(wizard, "checklist"))
    return render_step("provider", organization, wizard, 422 if form.is_submitted() else 200, form=form)


@bp.route("/orgs/<int:org_id>/wizard/<int:wizard_id>/checklist", methods=["GET", "POST"])
@login_required
def checklist(org_id: int, wizard_id: int):
    organization, wizard = load_wizard(org_id, wizard_id)
    if (stopped := guard_step(organization, wizard, "checklist")) is not None:
        return stopped
    form = ChecklistForm(data={"done": list(wizard.checklist_done or [])})
    if form.validate_on_submit():
        wizards.save_checklist(wizard, form.done.data)
        db.session.commit()
        return redirect(step_url(wizard, "scopes"))
    return render_step("checklist", organization, wizard, form=form, done=set(form.done.data or ()))


@bp.route("/orgs/<int:org_id>/wizard/<int:wizard_id>/scopes", methods=["GET", "POST"])
@login_required
def scopes(org_id: int, wizard_id: int):
    organization, wizard = load_wizard(org_id, wizard_id)
    if (stopped := guard_step(organization, wizard, "scopes")) is not None:
        return stopped
    form = ScopesForm(data={"scope": wizard.scope.split(), "delegated_scope": wizard.delegated_scope.split()})
    if form.validate_on_submit():
        try:
            wizards.save_scopes(wizard, scope=form.scope.data, delegated_scope=form.delegated_scope.data)
        except wizards.WizardError as exc:
            _show_problems(form, exc)
        else:
            db.session.commit()
            return redirect(step_url(wizard, "review"))
    chosen = {"scope": set(form.scope.data or ()), "delegated_scope": set(form.delegated_scope.data or ())}
    return render_step("scopes", organization, wizard, 422 if form.errors else 200, form=form, chosen=chosen,
                       presets=catalog.presets_for(wizard.provider), preset_form=PresetForm())


@bp.post("/orgs/<int:org_id>/wizard/<int:wizard_id>/scopes/preset")
@login_required
def preset(org_id: int, wizard_id: int):
    organization, wizard = load_wizard(org_id, wizard_id)
    if (stopped := guard_step(organization, wizard, "scopes")) is not None:
        return stopped
    form = PresetForm()
    try:
        if not form.validate_on_submit():
            abort(400)
        chosen = wizards.apply_preset(wizard, form.preset.data or "")
    except wizards.WizardError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash(f"Preset \"{chosen.label}\" applied. Check the boxes below, then save and continue.", "info")
    return redirect(step_url(wizard, "scopes"))


@bp.get("/orgs/<int:org_id>/wizard/<int:wizard_id>/review")
@login_required
def review(org_id: int, wizard_id: int):
    organization, wizard = load_wizard(org_id, wizard_id)
    if (stopped := guard_step(organization, wizard, "review")) is not None:
        return stopped
    return render_step(
        "review", organization, wizard, form=ConnectForm(), link_form=SetupLinkForm(), confirm_form=ConfirmForm(),
        links=setup_links.links_of(wizard), missing_items=wizards.missing_checklist_items(wizard),
        advice=catalog.advice(wizard.scope, wizard.delegated_scope),
    )


@bp.post("/orgs/<int:org_id>/wizard/<int:wizard_id>/discard")
@login_required
def discard(org_id: int, wizard_id: int):
    _organization, wizard = load_wizard(org_id, wizard_id)
    form = ConfirmForm()
    if not form.validate_on_submit() or form.confirm.data != "yes":
        abort(400)
    try:
        wizards.discard(wizard)
    except wizards.WizardError as exc:
        db.session.rollback()
        flash(str(exc), "info")
        return redirect(url_for("onboarding.start", org_id=wizard.organization_id))
    db.session.commit()
    flash("The wizard was discarded, with any setup link it had.", "info")
    return redirect(url_for("onboarding.start", org_id=wizard.organization_id))
