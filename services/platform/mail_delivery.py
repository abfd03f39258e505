"""Handing one message to the mail server (Flask-Mailman over SMTP) or to the outbox folder.

With MAIL_SERVER set, a message goes over SMTP with the MAIL_* settings read at send time; without it,
Flask-Mailman's file backend writes it to MAIL_FILE_PATH (the instance folder's `outbox/`), so a
development console needs no mail server. A failure comes back as a sentence that names its cause
(refused recipient, refused sign-in, no connection, no answer in time); it never holds MAIL_PASSWORD.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from flask import current_app
from flask_mailman import EmailMessage
from flask_mailman.backends.file import ImproperlyConfigured

from extensions import mail
from models.outgoing_email import OUTBOX, SMTP


@dataclass(frozen=True)
class Message:
    """A claimed message, decrypted for the moment it is handed over."""

    id: int
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class Delivery:
    """Where a message went (smtp or outbox) and, if it failed, why."""

    transport: str | None
    error: str | None


def transport() -> str:
    """Return where messages go with the current settings: smtp with MAIL_SERVER, else the outbox folder."""
    return SMTP if current_app.config.get("MAIL_SERVER") else OUTBOX


def send(message: Message) -> Delivery:
    """Hand message over; return where it went and, if it failed, the reason to show."""
    config = current_app.config
    where = transport()
    try:
        # Opened and closed here, so that a refusal half-way through never leaves the socket open.
        with _connection(config, where) as connection:
            EmailMessage(message.subject, message.body, config["MAIL_DEFAULT_SENDER"], [message.to],
                         connection=connection).send()
    except (smtplib.SMTPException, OSError, ImproperlyConfigured, ValueError) as exc:
        return Delivery(where, _reason(exc, config, where))
    return Delivery(where, None)


def _connection(config, where: str):
    if where == OUTBOX:
        return mail.get_connection(backend="file", file_path=config["MAIL_FILE_PATH"])
    return mail.get_connection(
        backend="smtp", host=config["MAIL_SERVER"], port=int(config["MAIL_PORT"]),
        username=config.get("MAIL_USERNAME") or "", password=config.get("MAIL_PASSWORD") or "",
        use_tls=bool(config.get("MAIL_USE_TLS")), use_ssl=bool(config.get("MAIL_USE_SSL")),
        timeout=float(config.get("MAIL_TIMEOUT") or 10),
    )


def _reply(code, text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def _reason(exc: Exception, config, where: str) -> str:
    """Return the failure as a sentence an admin can act on."""
    if where == OUTBOX:
        return f"Could not write the message to the outbox folder {config['MAIL_FILE_PATH']}: {exc}."
    server = f"{config['MAIL_SERVER']}:{config['MAIL_PORT']}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = "; ".join(f"{to}: {_reply(*reply)}" for to, reply in exc.recipients.items())
        return f"The mail server refused the recipient ({refusals})."
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"The mail server refused the sender {exc.sender} ({_reply(exc.smtp_code, exc.smtp_error)}); check MAIL_DEFAULT_SENDER."
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"The mail server did not accept MAIL_USERNAME and MAIL_PASSWORD ({_reply(exc.smtp_code, exc.smtp_error)})."
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"The mail server refused the message ({_reply(exc.smtp_code, exc.smtp_error)})."
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
        return _network_reason(exc.__context__, server, config)  # smtplib turns a read timeout into this
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"The mail server at {server} closed the connection before the message was sent."
    if isinstance(exc, smtplib.SMTPException):
        return f"The mail server at {server} could not take the message: {exc}."
    return _network_reason(exc, server, config)


def _network_reason(exc: Exception, server: str, config) -> str:
    if isinstance(exc, TimeoutError):
        return f"The mail server at {server} did not answer within {config.get('MAIL_TIMEOUT')} seconds (MAIL_TIMEOUT)."
    if isinstance(exc, ConnectionRefusedError):
        return f"Could not connect to the mail server at {server}: the connection was refused."
    if isinstance(exc, ssl.SSLError):
        return f"The TLS handshake with the mail server at {server} failed ({exc.reason or exc}); check MAIL_USE_TLS and MAIL_USE_SSL."
    if isinstance(exc, socket.gaierror):
        return f"The mail server's name {config['MAIL_SERVER']} could not be found (MAIL_SERVER)."
    if isinstance(exc, OSError):
        return f"Could not reach the mail server at {server}: {exc.strerror or exc}."
    return f"The message could not be sent: {exc}."
