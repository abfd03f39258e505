"""The wizard's steps: validation, back and forward, resume, progress, and what each step shows."""

from __future__ import annotations

import re

from extensions import db
from models.onboarding import WizardSession
from services.onboarding import wizard as wizards
from tests.web.wizard_helpers import FULL_SCOPE, ready_wizard, wizard_url


def start(client, organization) -> WizardSession:
    response = client.post(f"/orgs/{organization.id}/wizard")
    assert response.status_code == 302
    wizard = db.session.scalars(db.select(WizardSession).order_by(WizardSession.id.desc())).first()
    assert response.headers["Location"].endswith(wizard_url(wizard, "provider"))
    return wizard


def test_start_page_explains_the_steps_and_starts_a_draft(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    page = client.get(f"/orgs/{admin.organization_id}/wizard")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Setup checklist" in text and "Review and connect" in text and 'data-testid="start-wizard"' in text
    wizard = start(client, admin.organization)
    assert (wizard.status, wizard.step, wizard.created_by_id) == ("draft", "provider", admin.id)
    assert wizard.data_center == admin.organization.data_center


def test_starting_twice_resumes_the_same_draft(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    first = start(client, admin.organization)
    second = start(client, admin.organization)
    assert first.id == second.id
    assert db.session.scalar(db.select(db.func.count()).select_from(WizardSession)) == 1


def test_provider_step_saves_and_moves_to_the_checklist(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    page = client.get(wizard_url(wizard, "provider"))
    assert "Exchange on-premises or Microsoft 365 via EWS" in page.get_data(as_text=True)
    assert 'data-testid="step-counter"' in page.get_data(as_text=True)
    response = client.post(wizard_url(wizard, "provider"), data={"provider": "microsoft_graph"})
    assert response.headers["Location"].endswith(wizard_url(wizard, "checklist"))
    db.session.refresh(wizard)
    assert (wizard.provider, wizard.data_center, wizard.step) == ("microsoft_graph", "us", "checklist")


def test_provider_step_refuses_an_unknown_provider(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    response = client.post(wizard_url(wizard, "provider"), data={"provider": "lotus_notes"})
    assert response.status_code == 422
    assert "Choose one of the calendar services." in response.get_data(as_text=True)
    db.session.refresh(wizard)
    assert (wizard.provider, wizard.step) == (None, "provider")


def test_steps_ahead_of_the_progress_explain_what_to_do_first(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    for step in ("checklist", "scopes", "review", "verify"):
        page = client.get(wizard_url(wizard, step))
        assert page.status_code == 200
        assert "Choose the calendar service first." in page.get_data(as_text=True)
    response = client.post(wizard_url(wizard, "scopes"), data={"scope": FULL_SCOPE.split(), "delegated_scope": "read_write"})
    assert response.status_code == 302 and response.headers["Location"].endswith(wizard_url(wizard, "provider"))
    db.session.refresh(wizard)
    assert wizard.scope == ""


def test_checklist_shows_the_provider_items_and_warnings_and_saves_ticks(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    client.post(wizard_url(wizard, "provider"), data={"provider": "exchange_ews", "data_center": "us"})
    text = client.get(wizard_url(wizard, "checklist")).get_data(as_text=True)
    assert "ApplicationImpersonation" in text and "1 October 2026" in text and "February 2025" in text
    assert 'data-notice="propagation"' in text and "printable-checklist" in text
    response = client.post(wizard_url(wizard, "checklist"), data={"done": ["ews_test", "not_an_item", "ews_service_account"]})
    assert response.headers["Location"].endswith(wizard_url(wizard, "scopes"))
    db.session.refresh(wizard)
    assert wizard.checklist_done == ["ews_service_account", "ews_test"]
    again = client.get(wizard_url(wizard, "checklist")).get_data(as_text=True)
    assert 'value="ews_test"\n             checked' in again or 'value="ews_test" id="item-ews_test"\n             checked' in again


def test_changing_the_provider_clears_the_ticks(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin, provider="google")
    client.post(wizard_url(wizard, "provider"), data={"provider": "google", "data_center": "us"})
    wizards.save_checklist(wizard, ["google_admin"])
    db.session.commit()
    client.post(wizard_url(wizard, "provider"), data={"provider": "microsoft_graph", "data_center": "us"})
    db.session.refresh(wizard)
    assert wizard.checklist_done == []


def test_scopes_step_explains_each_scope_and_refuses_bad_combinations_with_reasons(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    client.post(wizard_url(wizard, "provider"), data={"provider": "microsoft_graph", "data_center": "us"})
    client.post(wizard_url(wizard, "checklist"), data={})
    page = client.get(wizard_url(wizard, "scopes")).get_data(as_text=True)
    assert "List your rooms and equipment" in page and "See only when people and rooms are busy or free" in page
    response = client.post(wizard_url(wizard, "scopes"), data={"delegated_scope": ["free_busy"]})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Choose at least one of people&#39;s calendars or rooms and equipment" in text
    assert "Microsoft 365 (Graph API) cannot limit access to free/busy only" in text
    db.session.refresh(wizard)
    assert (wizard.scope, wizard.delegated_scope, wizard.step) == ("", "", "scopes")


def test_scopes_step_saves_a_valid_choice_and_opens_the_review(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    client.post(wizard_url(wizard, "provider"), data={"provider": "google", "data_center": "us"})
    client.post(wizard_url(wizard, "checklist"), data={})
    response = client.post(wizard_url(wizard, "scopes"), data={
        "scope": ["service_account/resources/manage", "service_account/accounts/manage"],
        "delegated_scope": ["read_only"],
    })
    assert response.headers["Location"].endswith(wizard_url(wizard, "review"))
    db.session.refresh(wizard)
    assert (wizard.scope, wizard.delegated_scope) == (FULL_SCOPE, "read_only")


def test_a_preset_fills_the_scopes_without_moving_on(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    client.post(wizard_url(wizard, "provider"), data={"provider": "exchange_ews", "data_center": "us"})
    response = client.post(wizard_url(wizard, "scopes/preset"), data={"preset": "free_busy"})
    assert response.headers["Location"].endswith(wizard_url(wizard, "scopes"))
    db.session.refresh(wizard)
    assert (wizard.scope, wizard.delegated_scope) == (FULL_SCOPE, "free_busy")
    page = client.get(wizard_url(wizard, "scopes")).get_data(as_text=True)
    assert 'Preset "Free/busy only" applied' in page.replace("&#34;", '"')


def test_a_preset_that_does_not_fit_the_provider_is_refused(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = start(client, admin.organization)
    client.post(wizard_url(wizard, "provider"), data={"provider": "google", "data_center": "us"})
    client.post(wizard_url(wizard, "scopes/preset"), data={"preset": "free_busy"})
    db.session.refresh(wizard)
    assert wizard.delegated_scope == ""


def test_back_and_forward_keep_every_answer(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin, provider="google", delegated_scope="read_only")
    provider_page = client.get(wizard_url(wizard, "provider")).get_data(as_text=True)
    assert 'value="google"\n             checked' in provider_page
    scopes_page = client.get(wizard_url(wizard, "scopes")).get_data(as_text=True)
    assert re.search(r'value="read_only" id="delegated-read_only"\s+checked', scopes_page)
    review = client.get(wizard_url(wizard, "review")).get_data(as_text=True)
    assert "Google Workspace" in review and "Read only" in review


def test_leaving_and_coming_back_resumes_at_the_furthest_step(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin)
    page = client.get(f"/orgs/{admin.organization_id}/wizard").get_data(as_text=True)
    assert 'data-testid="resume-wizard"' in page and wizard_url(wizard, "review") in page


def test_another_admin_of_the_organization_resumes_the_same_draft(client, login_as, make_org_admin):
    admin = make_org_admin()
    wizard = ready_wizard(admin.organization, admin)
    login_as(make_org_admin(admin.organization))
    page = client.get(f"/orgs/{admin.organization_id}/wizard").get_data(as_text=True)
    assert wizard_url(wizard, "review") in page


def test_review_summarises_the_choices_and_reminds_of_unticked_items(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin, provider="exchange_ews")
    text = client.get(wizard_url(wizard, "review")).get_data(as_text=True)
    assert 'data-testid="summary-provider">Exchange on-premises or Microsoft 365 via EWS' in text
    assert 'data-notice="ews_365_retirement"' in text
    assert 'data-testid="checklist-reminder"' in text
    assert "data-once" in text and 'data-testid="connect"' in text


def test_progress_marks_done_current_and_locked_steps(app, make_org_admin):
    admin = make_org_admin()
    wizard = wizards.start_wizard(admin.organization, actor=admin)
    wizards.save_provider(wizard, provider="google")
    states = {step.key: step.state for step in wizards.progress(wizard, "checklist")}
    assert states == {"provider": "done", "checklist": "current", "scopes": "todo", "review": "locked",
                      "verify": "locked"}


def test_discarding_a_wizard_needs_confirmation_and_then_allows_a_fresh_start(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin)
    assert client.post(wizard_url(wizard, "discard")).status_code == 400
    client.post(wizard_url(wizard, "discard"), data={"confirm": "yes"})
    db.session.refresh(wizard)
    assert wizard.status == "abandoned"
    assert "was discarded" in client.get(wizard_url(wizard, "review")).get_data(as_text=True)
    assert start(client, admin.organization).id != wizard.id


def test_wizard_pages_need_sign_in(client, make_org_admin):
    admin = make_org_admin()
    wizard = ready_wizard(admin.organization, admin)
    response = client.get(wizard_url(wizard, "review"))
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_another_organizations_wizard_is_not_found(client, login_as, make_org_admin):
    owner = make_org_admin()
    wizard = ready_wizard(owner.organization, owner)
    intruder = login_as(make_org_admin())
    assert client.get(f"/orgs/{intruder.organization_id}/wizard/{wizard.id}/review").status_code == 404
    assert client.get(wizard_url(wizard, "review")).status_code == 404
