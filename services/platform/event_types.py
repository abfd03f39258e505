"""Every event type the console writes, with its subject type and what it means (API docs, webhook settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    name: str
    subject_type: str
    description: str


CATALOG = (
    EventType("organization.created", "organization", "An organization was created."),
    EventType("organization.state_changed", "organization",
              "The organization's onboarding state changed (not connected, connected, importing, authorizing, "
              "ready, needs attention)."),
    EventType("connection.active", "connection", "A service account was connected, or connected again."),
    EventType("connection.needs_reauth", "connection",
              "Cronofy refused the service account's authorization: an admin must connect it again."),
    EventType("connection.revoked", "connection", "The service account was disconnected."),
    EventType("mailbox.created", "mailbox", "A mailbox was added (import, API, resource sync, directory)."),
    EventType("mailbox.authorized", "mailbox", "Calendar access to the mailbox was granted and its tokens stored."),
    EventType("mailbox.failed", "mailbox", "Authorizing the mailbox failed; `cause` and `fix` say why and what to do."),
    EventType("mailbox.needs_attention", "mailbox",
              "An authorized mailbox stopped working (a refused refresh, a disconnected profile)."),
    EventType("mailbox.revoked", "mailbox", "The mailbox's authorization was revoked."),
    EventType("mailbox.removed", "mailbox", "The mailbox was removed; `data` is its last state."),
    EventType("run.started", "run", "A bulk authorization or revocation run started."),
    EventType("run.paused", "run", "A run paused: by a person, or at a wave's end or a failure threshold."),
    EventType("run.resumed", "run", "A paused run goes on."),
    EventType("run.completed", "run", "A run finished every mailbox it had."),
    EventType("run.cancelled", "run", "A run was cancelled; what it had not sent was given back."),
    EventType("webhook_endpoint.disabled", "webhook_endpoint",
              "The console disabled a webhook endpoint (it answered 410 Gone, or failed for 5 days straight)."),
)
BY_NAME = {event_type.name: event_type for event_type in CATALOG}
NAMES = tuple(BY_NAME)
# Sent to one endpoint on request ("Send a test event"); never written to the log's other readers.
TEST_EVENT = "webhook.test"
