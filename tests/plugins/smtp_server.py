"""Pytest plugin: a real SMTP server (aiosmtpd) on a loopback port, and the console pointed at it.

Registered in `tests/conftest.py` (`pytest_plugins`). Fixtures:
- `smtp_server` (function): the session's server with its inbox emptied and refusals switched off;
  `smtp_server.received` lists what it accepted, `smtp_server.refuse_recipients = True` makes it answer
  RCPT TO with 550, `smtp_server.wait_for(n)` waits until n messages arrived;
- `mail_over_smtp` (function): the app's MAIL_* settings pointed at that server (and the server returned);
- `closed_smtp_port`: a loopback port nothing listens on, for connection failures.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted: the envelope and the parsed headers and text."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    to: str
    sender: str
    body: str


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self._server.refuse_recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self._server.accept(ReceivedMessage(
            mail_from=envelope.mail_from, rcpt_tos=tuple(envelope.rcpt_tos), subject=str(parsed["Subject"]),
            to=str(parsed["To"]), sender=str(parsed["From"]), body=parsed.get_body(("plain",)).get_content(),
        ))
        return "250 Message accepted for delivery"


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """An aiosmtpd server in a thread of its own; what it accepted, and a switch to refuse recipients."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.refuse_recipients = False
        self.received: list[ReceivedMessage] = []
        self._arrived = threading.Condition()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=10)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def accept(self, message: ReceivedMessage) -> None:
        with self._arrived:
            self.received.append(message)
            self._arrived.notify_all()

    def reset(self) -> None:
        with self._arrived:
            self.received.clear()
        self.refuse_recipients = False

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Return the received messages once there are at least count of them; fail after timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"the SMTP server got {len(self.received)} messages, not {count}", pytrace=False)
                self._arrived.wait(left)
            return list(self.received)


@pytest.fixture(scope="session")
def smtp_server_session():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(smtp_server_session):
    smtp_server_session.reset()
    yield smtp_server_session
    smtp_server_session.reset()


@pytest.fixture
def mail_over_smtp(app, smtp_server):
    """Point the app's MAIL_* settings at the loopback SMTP server; return the server."""
    app.config.update(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port, MAIL_USE_TLS=False,
                      MAIL_USE_SSL=False, MAIL_USERNAME=None, MAIL_PASSWORD=None, MAIL_TIMEOUT=5.0,
                      MAIL_DEFAULT_SENDER="Console <console@vendor.example>")
    return smtp_server


@pytest.fixture
def closed_smtp_port() -> int:
    return free_port()


@pytest.fixture
def deliver_mail(app, tmp_path):
    """Give the test a job queue of its own and return `deliver()`, which runs the email jobs waiting in it.

    This is what `flask worker` does with them, in the test's thread: `deliver()` returns how many ran.
    """
    import secrets

    from jobs import tasks
    from jobs.queue import bind

    app.config.update(QUEUE_PATH=str(tmp_path / "mail-queue.sqlite"), QUEUE_NAME=f"ecc-mail-{secrets.token_hex(4)}")

    def deliver() -> int:
        huey, ran, previous = bind(app.config), 0, tasks._app
        tasks.set_app(app)
        try:
            while (task := huey.dequeue()) is not None:
                assert task.name == "send_email", f"unexpected job {task.name} in the mail test's queue"
                huey.execute(task)
                ran += 1
        finally:
            tasks.set_app(previous)
        return ran

    return deliver
