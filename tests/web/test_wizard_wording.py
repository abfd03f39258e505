"""What the wizard's pages say: articles, optional items, the next step after Verify, the fixed data center."""

from __future__ import annotations

import re

import pytest

from extensions import db
from models.onboarding import WizardSession
from services.onboarding import catalog
from services.onboarding import wizard as wizards
from tests.helpers import make_connection
from tests.web.wizard_helpers import ready_wizard, start_consent, wizard_url


def page_of(client, wizard, step: str) -> str:
    response = client.get(wizard_url(wizard, step))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def text_only(html: str) -> str:
    """Return the page's text with tags dropped and whitespace collapsed, as a reader sees it."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" .", ".")


def test_the_admin_role_takes_the_right_article(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin, provider="exchange_ews")
    provider_page = text_only(page_of(client, wizard, "provider"))
    assert "Needs an Exchange administrator." in provider_page
    assert "Needs a Google Workspace super administrator." in provider_page
    assert "Needs a Microsoft Entra Global Administrator." in provider_page
    assert "a Exchange" not in provider_page
    review = text_only(page_of(client, wizard, "review"))
    assert "Sign in there as an Exchange administrator of your domain" in review


@pytest.mark.parametrize("provider", ["google", "microsoft_graph", "exchange_ews"])
def test_an_optional_checklist_item_says_optional_once(client, login_as, make_org_admin, provider):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin, provider=provider)
    html = page_of(client, wizard, "checklist")
    optional = [item for item in catalog.provider(provider).checklist if item.optional]
    assert optional and html.count('data-testid="optional">Optional</span>') == len(optional)
    assert "Optional:" not in html and "optional:" not in html
    for item in optional:
        assert f"Optional {item.text[:30]}" in text_only(html)


def test_verify_offers_importing_mailboxes_as_the_next_step(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin)
    wizards.complete(wizard, make_connection(admin.organization))
    db.session.commit()
    html = page_of(client, wizard, "verify")
    link = re.search(r'<a class="btn btn-primary" href="([^"]+)" data-testid="next-import">'
                     r"Next: import mailboxes</a>", html)
    assert link and link.group(1) == f"/orgs/{admin.organization_id}/mailboxes/import"
    assert html.count("btn btn-primary") == 1  # the one primary action on the page
    assert client.get(link.group(1)).status_code == 200


def test_the_wizard_shows_the_organizations_data_center_as_fixed(client, login_as, make_org_admin, make_organization):
    admin = login_as(make_org_admin(make_organization(name="Globex GmbH", data_center="de")))
    wizard = wizards.start_wizard(admin.organization, actor=admin)
    db.session.commit()
    html = page_of(client, wizard, "provider")
    assert 'data-testid="data-center"><strong>Germany (DE)</strong>' in html
    assert ("Chosen once, when Globex GmbH was created in this console; it cannot be changed, in this wizard or "
            "later.") in text_only(html)
    assert 'name="data_center"' not in html and "<select" not in html
    start = client.get(f"/orgs/{admin.organization_id}/wizard").get_data(as_text=True)
    assert "the data center is already set for Globex GmbH" in start


def test_the_wizard_refuses_another_data_center_and_keeps_the_organizations(
    client, login_as, make_org_admin, make_organization
):
    admin = login_as(make_org_admin(make_organization(data_center="de")))
    wizard = wizards.start_wizard(admin.organization, actor=admin)
    db.session.commit()
    response = client.post(wizard_url(wizard, "provider"), data={"provider": "google", "data_center": "us"})
    assert response.status_code == 422
    assert "This organization&#39;s data center is Germany (DE)" in response.get_data(as_text=True)
    db.session.refresh(wizard)
    assert (wizard.provider, wizard.data_center, wizard.step) == (None, "de", "provider")
    with pytest.raises(wizards.WizardError):
        wizards.save_provider(wizard, provider="google", data_center="uk")


def test_a_wizard_saved_with_another_data_center_connects_in_the_organizations(
    app, client, login_as, make_org_admin, make_organization
):
    app.config.update(SANDBOX_MODE=False, CRONOFY_CLIENT_ID="cli_live", CRONOFY_CLIENT_SECRET="sec_live")
    admin = login_as(make_org_admin(make_organization(data_center="de")))
    wizard = ready_wizard(admin.organization, admin)
    wizard.data_center = "us"  # saved before the data center was fixed per organization
    db.session.commit()
    assert start_consent(client, wizard).startswith("https://app-de.cronofy.com/enterprise_connect/oauth/authorize?")
    assert db.session.get(WizardSession, wizard.id).data_center == "de"


def test_the_new_organization_form_says_the_same_about_the_data_center(client, login_as, make_support_user):
    login_as(make_support_user())
    html = client.get("/support/orgs/new").get_data(as_text=True)
    assert "Chosen once, now: it cannot be changed later, in the connection wizard or anywhere else." in html
    assert "its admins see it in the wizard" in html


@pytest.mark.config(SETUP_LINK_TTL_HOURS=1)
def test_the_setup_link_lifetime_is_counted_in_words(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    wizard = ready_wizard(admin.organization, admin)
    assert "expires after 1 hour." in text_only(page_of(client, wizard, "review"))
