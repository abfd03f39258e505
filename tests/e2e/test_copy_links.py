"""In a real browser: the Copy button next to a just-issued invitation link copies all of it, says so, and
selects the link for a manual copy where the clipboard cannot be written."""

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


def _invite(live_server, page, admin, email: str) -> str:
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/orgs/{admin.organization_id}")
    page.goto(f"{live_server.url}/orgs/{admin.organization_id}/admins")
    page.get_by_label("Email of the new admin").fill(email)
    page.get_by_role("button", name="Create invitation link").click()
    page.wait_for_url(f"{live_server.url}/orgs/{admin.organization_id}/admins")
    link = page.get_by_test_id("invitation-link").input_value()
    assert link.startswith(f"{live_server.url}/invitations/") and len(link) > 80, "the whole link is in the field"
    return link


def test_copy_puts_the_whole_invitation_link_on_the_clipboard(live_server, page, make_org_admin):
    admin = make_org_admin(email="olivia@globex.example")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    link = _invite(live_server, page, admin, "new.admin@globex.example")

    button = page.get_by_role("button", name="Copy invitation link")
    button.click()
    page.get_by_text("Copied to the clipboard.").wait_for()  # the clipboard write is asynchronous
    assert page.get_by_role("button", name="Copied").is_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == link


def test_without_a_clipboard_copy_selects_the_link_instead(live_server, page, make_org_admin):
    admin = make_org_admin(email="olivia@globex.example")
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined});")
    link = _invite(live_server, page, admin, "new.admin@globex.example")

    page.get_by_role("button", name="Copy invitation link").click()
    page.get_by_text("Selected: press Ctrl+C").wait_for()
    selected = page.evaluate(
        "() => { const f = document.getElementById('invitation-link'); return f.value.slice(f.selectionStart, f.selectionEnd); }"
    )
    assert selected == link
