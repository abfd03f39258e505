"""A real webhook receiver on 127.0.0.1 for delivery tests, a fake clock, and helpers to make endpoints and events.

The receiver is an HTTP server in a thread. Each request is recorded (headers, body) and answered by
the receiver's `respond` function, which a test replaces to misbehave: an error status, a redirect,
no answer, a closed connection, an answer one byte at a time, a body of many megabytes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from extensions import db
from models.base import utcnow
from models.webhook import WebhookDelivery
from services.platform import events
from services.webhooks import endpoints
from services.webhooks.delivery import Sender


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server's name
        receiver: Receiver = self.server.receiver
        length = int(self.headers.get("content-length") or 0)
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
        with receiver.lock:
            receiver.requests.append(received)
            receiver.active += 1
            receiver.most_active = max(receiver.most_active, receiver.active)
        try:
            receiver.respond(self, received)
        except OSError:
            pass  # the sender hung up (a huge body cut off, a deadline): what the test wants
        finally:
            with receiver.lock:
                receiver.active -= 1

    def log_message(self, *args):  # quiet
        pass


def answer(handler: BaseHTTPRequestHandler, status: int = 200, body: bytes = b"ok", headers: dict | None = None):
    """Write a complete answer (the default respond function answers 200 "ok")."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Receiver:
    """The server, what it received, and how it answers (`respond(handler, received)`)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends every hanging answer (set at teardown)
        self.active = self.most_active = 0
        self.respond = lambda handler, received: answer(handler)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.receiver = self
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def hang(self, handler, received) -> None:
        """Answer nothing until released (a receiver that never answers)."""
        self.release.wait(30)

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(app):
    server = Receiver()
    yield server
    server.stop()


class Clock:
    """A fake clock for the sender: it stands still until the test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or utcnow()

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def sender(app):
    """A sender on the real clock; closed at the end of the test."""
    made = Sender(app)
    yield made
    made.close()


def make_endpoint(url: str, **kwargs) -> endpoints.IssuedEndpoint:
    issued = endpoints.create_endpoint(url, **kwargs)
    db.session.commit()
    return issued


def record_event(event_type: str = "mailbox.authorized", *, organization_id=None, subject_id: int = 1001,
                 external_id: str | None = "user_88", data: dict | None = None) -> None:
    """Record one event of a mailbox (its data given, no mailbox row needed) and commit it."""
    shown = data or {"id": str(subject_id), "external_id": external_id, "status": "authorized"}
    events.record(event_type, organization_id=organization_id, subject_type="mailbox", subject_id=subject_id,
                  data=shown)
    db.session.commit()


def run_until_settled(sender: Sender, *, rounds: int = 50, wait: float = 20) -> None:
    """Tick and wait for the attempts until a round starts nothing and nothing is left to store."""
    for _ in range(rounds):
        started = sender.tick()
        assert sender.wait_idle(wait), "an attempt did not finish in time"
        if not started and not sender.unsettled:
            return
    raise AssertionError("deliveries kept being started")


def deliveries() -> list[WebhookDelivery]:
    db.session.rollback()
    db.session.expire_all()
    return list(db.session.scalars(db.select(WebhookDelivery).order_by(WebhookDelivery.id)))


def wait_for(condition, timeout: float = 10, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("the condition did not hold in time")
