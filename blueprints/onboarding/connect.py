"""Connect (the Authlib redirect), the one fixed return address, verification, and setup links."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from blueprints.onboarding import bp
from blueprints.onboarding.forms import ConfirmForm, ConnectForm, SetupLinkForm
from blueprints.onboarding.oauth import redirect_to_consent, take_state
from blueprints.onboarding.views import guard_step, load_wizard, render_step, step_url
from extensions import db
from models.onboarding import ConsentAttempt, SetupLink
from services.connections import replacement
from services.onboarding import catalog, consent, setup_links
from services.onboarding import wizard as wizards
from services.platform import upstream
from services.platform.tenancy import can_access, scoped_or_404
from services.platform.wording import sentence

# The setup page a colleague came from, so that a failed consent can offer the way back to it.
SETUP_RETURN_KEY = "onboarding_setup_return"
# The consent this browser finished through a setup link: only it may see the result page.
SETUP_DONE_KEY = "onboarding_setup_done"


def callback_url() -> str:
    """Return the one redirect URI registered with Cronofy for every organization (§3.1)."""
    return upstream.callback_base_url() + url_for("onboarding.callback")


def _send_to_consent(wizard, *, actor=None, setup_link: SetupLink | None = None):
    started = consent.begin_consent(wizard, redirect_uri=callback_url(), actor=actor, setup_link=setup_link)
    db.session.commit()
    return redirect_to_consent(
        data_center=started.attempt.data_center, state=started.state, redirect_uri=started.attempt.redirect_uri,
        scope=started.attempt.scope, delegated_scope=started.attempt.delegated_scope,
        provider_name=consent.provider_hint(started.attempt),
    )


def problem_page(problem: consent.ConsentProblem, *, back_url: str | None = None):
    """Render what went wrong on the way to or back from the consent page, and the way forward."""
    given_back, check_url = problem.given_back_text
    return render_template("onboarding/problem.html", problem=problem, text=problem.text, back_url=back_url,
                           wizard=problem.wizard, given_back=given_back, check_url=check_url), problem.text.status


@bp.post("/orgs/<int:org_id>/wizard/<int:wizard_id>/connect")
@login_required
def connect(org_id: int, wizard_id: int):
    _organization, wizard = load_wizard(org_id, wizard_id)
    if not ConnectForm().validate_on_submit():
        abort(400)
    if wizard.status == "completed":
        # A second click after the first one succeeded: show the result instead of starting over.
        flash("These calendars are already connected.", "info")
        return redirect(step_url(wizard, "verify"))
    try:
        return _send_to_consent(wizard, actor=current_user)
    except wizards.WizardError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(step_url(wizard, exc.step or "review"))
    except consent.ConsentProblem as problem:
        db.session.rollback()
        return problem_page(problem, back_url=_wizard_back_url(wizard, problem.text.retry_step))


def _wizard_back_url(wizard, step: str | None) -> str | None:
    if wizard is None or not can_access(current_user, wizard.organization_id):
        return None
    if step is None or not wizard.is_open:
        return url_for("onboarding.start", org_id=wizard.organization_id)
    return step_url(wizard, step)


def _back_url_for(attempt: ConsentAttempt | None, problem: consent.ConsentProblem) -> str | None:
    if attempt is not None and attempt.setup_link_id is not None:
        return None if problem.text.final else session.get(SETUP_RETURN_KEY)
    if attempt is None:
        return url_for("organizations.home") if current_user.is_authenticated else None
    wizard = attempt.wizard_session
    newer_connected = problem.kind == "superseded" and wizard.status == "completed"
    if newer_connected and can_access(current_user, wizard.organization_id):
        return step_url(wizard, "verify")  # the newer attempt's result is the wizard's
    return _wizard_back_url(wizard, problem.text.retry_step)


def _already_handled(attempt: ConsentAttempt, problem: consent.ConsentProblem):
    """A reply seen twice: after a success, show the result to whoever may see it."""
    wizard = attempt.wizard_session
    if wizard.status == "completed" and can_access(current_user, wizard.organization_id):
        flash("This connection was already completed; here is the result.", "info")
        return redirect(step_url(wizard, "verify"))
    return problem_page(problem, back_url=_back_url_for(attempt, problem))


@bp.get("/connect/callback")
def callback():
    state = request.args.get("state", "")
    attempt = consent.find_attempt(state)
    try:
        if attempt is not None and attempt.used_at is None and not take_state(attempt.data_center, state):
            # An ended attempt says why it ended, to this browser or any other (a reload included).
            raise consent.ConsentProblem(consent.why_ended(attempt) or "other_session", attempt)
        attempt = consent.claim_consent(state)
        db.session.commit()
    except consent.ConsentProblem as problem:
        db.session.rollback()
        if problem.kind == "used_state":
            return _already_handled(problem.attempt, problem)
        problem.give_back(request.args.get("code"))
        return problem_page(problem, back_url=_back_url_for(problem.attempt, problem))
    if request.args.get("error"):
        problem = consent.refuse_consent(attempt, request.args["error"], request.args.get("error_description"))
        db.session.commit()
        return problem_page(problem, back_url=_back_url_for(attempt, problem))
    return _complete(attempt, request.args.get("code"))


def _complete(attempt: ConsentAttempt, code: str | None):
    try:
        result = consent.complete_consent(attempt, code)
    except consent.ConsentProblem as problem:
        db.session.commit()  # keep the recorded failure and its audit event
        return problem_page(problem, back_url=_back_url_for(attempt, problem))
    db.session.commit()
    revocation = consent.revoke_replaced(result)  # only once the new service account is stored
    db.session.commit()
    if attempt.setup_link_id is not None:
        session.pop(SETUP_RETURN_KEY, None)
        session[SETUP_DONE_KEY] = attempt.id
        return redirect(url_for("onboarding.setup_done"))
    if result.outcome.is_narrower:
        flash("Connected, but with fewer permissions than requested: see below.", "warning")
    else:
        flash(sentence(f"Connected {result.outcome.connection.label}"), "success")
    if revocation is not None:
        _flash_revocation(revocation, result.outcome.connection)
    return redirect(step_url(attempt.wizard_session, "verify"))


def _flash_revocation(revocation, connection) -> None:
    """Say what became of the service account the new one replaced."""
    if revocation.revoked:
        flash(f"This consent brought a new service account ({connection.service_account_id}), so the one it "
              f"replaced ({revocation.service_account_id}) was revoked at Cronofy: only the new one is active.", "info")
        return
    page = replacement.authorizations_page(connection.data_center)
    where = f" on Cronofy's authorizations page ({page})" if page else " in Cronofy's admin pages"
    flash(f"This consent brought a new service account ({connection.service_account_id}), but Cronofy did not "
          f"confirm revoking the one it replaced ({revocation.service_account_id}). {sentence(revocation.reason)} "
          f"Remove it{where}.", "warning")


@bp.get("/orgs/<int:org_id>/wizard/<int:wizard_id>/verify")
@login_required
def verify(org_id: int, wizard_id: int):
    organization, wizard = load_wizard(org_id, wizard_id)
    if (stopped := guard_step(organization, wizard, "verify")) is not None:
        return stopped
    connection = wizard.connection
    return render_step(
        "verify", organization, wizard, connection=connection,
        missing_scope=_missing(connection.requested_scope, connection.granted_scope),
        missing_delegated=_missing(connection.requested_delegated_scope, connection.granted_delegated_scope),
        reconnect_form=ConnectForm(),
    )


def _missing(requested: str, granted: str) -> list[catalog.Scope]:
    have = set((granted or "").split())
    return catalog.describe([w for w in (requested or "").split() if w not in have])


@bp.post("/orgs/<int:org_id>/wizard/<int:wizard_id>/setup-links")
@login_required
def create_setup_link(org_id: int, wizard_id: int):
    _organization, wizard = load_wizard(org_id, wizard_id)
    form = SetupLinkForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors) or "Check the form.", "danger")
        return redirect(step_url(wizard, "review"))
    try:
        issued = setup_links.create_setup_link(wizard, actor=current_user, label=form.label.data or "",
                                               email=form.email.data or "")
    except setup_links.SetupLinkError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(step_url(wizard, "review"))
    db.session.commit()
    # The address is shown once, on this response only: it is stored nowhere in readable form.
    return render_template("onboarding/setup_link_created.html", wizard=wizard, link=issued.link, url=issued.url,
                           emailed_to=issued.email.to_address if issued.email else None,
                           organization=wizard.organization, step="review", progress=wizards.progress(wizard, "review"))


@bp.post("/orgs/<int:org_id>/wizard/<int:wizard_id>/setup-links/<int:link_id>/revoke")
@login_required
def revoke_setup_link(org_id: int, wizard_id: int, link_id: int):
    organization, _wizard = load_wizard(org_id, wizard_id)
    link = scoped_or_404(SetupLink, link_id, organization)
    form = ConfirmForm()
    if not form.validate_on_submit() or form.confirm.data != "yes":
        abort(400)
    setup_links.revoke_setup_link(link, actor=current_user)
    db.session.commit()
    flash("The setup link was withdrawn; it no longer works.", "info")
    return redirect(step_url(link.wizard_session, "review"))


def _setup_problem(exc: setup_links.SetupLinkError):
    db.session.rollback()
    status = 404 if exc.kind == setup_links.INVALID else 410
    return render_template("onboarding/setup_unavailable.html", message=str(exc)), status


@bp.get("/setup/<secret:token>")
def setup_page(token: str):
    try:
        link = setup_links.resolve_setup_link(token)
    except setup_links.SetupLinkError as exc:
        return _setup_problem(exc)
    wizard = link.wizard_session
    return render_template(
        "onboarding/setup.html", link=link, wizard=wizard, organization=link.organization, token=token,
        provider=catalog.provider(wizard.provider), catalog=catalog, form=ConnectForm(),
        progress=None, step="review",
    )


@bp.post("/setup/<secret:token>/connect")
def setup_connect(token: str):
    try:
        link = setup_links.resolve_setup_link(token)
    except setup_links.SetupLinkError as exc:
        return _setup_problem(exc)
    if not ConnectForm().validate_on_submit():
        abort(400)
    session[SETUP_RETURN_KEY] = url_for("onboarding.setup_page", token=token)
    try:
        return _send_to_consent(link.wizard_session, setup_link=link)
    except (wizards.WizardError, consent.ConsentProblem):
        db.session.rollback()
        return _setup_problem(setup_links.SetupLinkError(
            "This setup is not ready to connect any more. Ask whoever sent the link to check it.",
            setup_links.CLOSED))


@bp.get("/setup/done")
def setup_done():
    attempt_id = session.get(SETUP_DONE_KEY)
    attempt = db.session.get(ConsentAttempt, attempt_id) if isinstance(attempt_id, int) else None
    if attempt is None or attempt.outcome != "connected":
        abort(404)
    connection = attempt.wizard_session.connection
    return render_template("onboarding/setup_done.html", attempt=attempt, connection=connection,
                           organization=attempt.organization)
