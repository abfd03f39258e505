"""In a real browser: a vendor admin adds a webhook endpoint (a receiver this test runs on loopback), sends the
test event, sees the worker's delivery in the log with its attempt, and redelivers it; the receiver gets both,
signed with the secret the page showed once, with the same `webhook-id`."""

from __future__ import annotations

import json
import threading
import time

import pytest
from standardwebhooks import Webhook
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from jobs.cli import WebhookSender
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e


class Receiver:
    """A webhook receiver on a loopback port: keeps every request, answers 200 "received"."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/console"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @Request.application
    def _app(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), request.get_data()))
        return Response("received", status=200)

    def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"the receiver got {len(self.requests)} requests, not {count}"
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def webhook_sender(app, live_server):
    """The worker's webhook sender (what `flask worker` runs), ticking in this process."""
    sender = WebhookSender(app, interval=0.2).start()
    yield sender
    sender.stop()


def _reload_until(page, locator, timeout: float = 15) -> None:
    """The log is not live: reload it until the delivery shows what the worker did."""
    deadline = time.monotonic() + timeout
    while locator.count() == 0:
        assert time.monotonic() < deadline, "the delivery log never showed it"
        time.sleep(0.2)
        page.reload()


def test_create_an_endpoint_send_the_test_event_see_it_delivered_and_redeliver(
        live_server, page, receiver, webhook_sender, make_support_user):
    from playwright.sync_api import expect

    admin = make_support_user(is_vendor_admin=True)
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/support/**")

    page.get_by_test_id("nav-identity").click()
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_test_id("empty-state")).to_contain_text("No webhook endpoints yet")
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Scheduling back end")
    page.get_by_role("button", name="Save endpoint").click()
    secret = page.get_by_test_id("new-webhook-secret").input_value()
    assert secret.startswith("whsec_")
    endpoint = page.get_by_test_id("webhook-endpoint")
    expect(endpoint).to_contain_text(receiver.url)
    expect(endpoint).to_contain_text("All event types")

    endpoint.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_role("alert").filter(has_text="A test event is on its way")).to_be_visible()
    receiver.wait_for(1)
    delivered = page.locator('[data-testid="webhook-delivery"][data-event-type="webhook.test"]')
    _reload_until(page, delivered.locator('[data-status="succeeded"]'))
    delivered.get_by_text("1 attempt").click()
    attempt = delivered.get_by_test_id("delivery-attempt")
    expect(attempt).to_contain_text("200")
    expect(attempt).to_contain_text("received")

    delivered.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("alert").filter(has_text="Redelivering webhook.test")).to_be_visible()
    receiver.wait_for(2)
    _reload_until(page, page.locator('[data-testid="webhook-delivery"]:has-text("redelivery 1") [data-status="succeeded"]'))

    verifier = Webhook(secret)
    ids = set()
    for headers, body in receiver.requests:
        lowered = {name.lower(): value for name, value in headers.items()}
        payload = verifier.verify(body, lowered)
        assert payload == json.loads(body) and json.loads(body)["type"] == "webhook.test"
        ids.add(lowered["webhook-id"])
    assert len(ids) == 1, "a redelivery carries the same webhook-id, so receivers can deduplicate"


def test_edit_rotate_and_delete_pages_ask_first(live_server, page, make_support_user):
    from playwright.sync_api import expect

    from extensions import db
    from services.webhooks import endpoints

    admin = make_support_user(is_vendor_admin=True)
    issued = endpoints.create_endpoint("http://127.0.0.1:9/hooks", description="Old name")
    db.session.commit()
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/support/**")
    page.goto(f"{live_server.url}/support/webhooks")

    page.get_by_role("link", name="Edit http://127.0.0.1:9/hooks").click()
    page.get_by_label("Description").fill("Billing back end")
    page.get_by_label("run.paused").check()
    page.get_by_role("button", name="Save endpoint").click()
    endpoint = page.get_by_test_id("webhook-endpoint")
    expect(endpoint).to_contain_text("Billing back end")
    expect(endpoint).to_contain_text("run.paused")

    page.get_by_role("link", name="Rotate secret of http://127.0.0.1:9/hooks").click()
    expect(page.get_by_role("heading", name="Rotate the signing secret?")).to_be_visible()
    page.get_by_role("button", name="Rotate secret").click()
    rotated = page.get_by_test_id("new-webhook-secret").input_value()
    assert rotated.startswith("whsec_") and rotated != issued.secret
    expect(page.get_by_test_id("issued-secret")).to_contain_text("24 hours")

    page.get_by_role("link", name="Delete http://127.0.0.1:9/hooks").click()
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_test_id("webhook-endpoint")).to_have_count(1)
    page.get_by_role("link", name="Delete http://127.0.0.1:9/hooks").click()
    page.get_by_role("button", name="Delete endpoint").click()
    expect(page.get_by_role("alert").filter(has_text="Deleted http://127.0.0.1:9/hooks")).to_be_visible()
    expect(page.get_by_test_id("empty-state")).to_contain_text("No webhook endpoints yet")
