"""In a real browser: /api/docs renders the OpenAPI document with the console's own Swagger UI assets."""

from __future__ import annotations

import pytest

from tests.plugins.axe import FAILING_IMPACTS, WCAG_TAGS, _axe

pytestmark = pytest.mark.e2e


def test_the_reference_shows_every_group_and_opens_an_operation(page, live_server):
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{live_server.url}/api/docs")
    page.get_by_text("Enterprise Connect Console API").first.wait_for()
    for tag in ("Organizations", "Portal links", "Connections", "Mailboxes", "Access tokens"):
        assert page.locator(f"#operations-tag-{tag.replace(' ', '_')}").is_visible(), tag
    page.get_by_text("/api/v1/organizations/{organization_id}/portal-links").first.click()
    page.get_by_text("return_url").first.wait_for()
    page.get_by_role("button", name="Try it out").first.click()
    assert failed == []
    # The plugin checked the page as it loaded; check it again with an operation open and editable.
    results = _axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]})
    serious = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in results.response["violations"]
               if v["impact"] in FAILING_IMPACTS]
    assert serious == [], "\n".join(map(str, serious))
