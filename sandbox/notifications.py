"""Push notifications (§3.11): one JSON POST per open channel, signed like every callback.

Notifications are rows of the callback queue (`outcome` = "notification:<type>"), so the delivery worker
sends, retries, signs and logs them exactly as it does delegated-access callbacks; the event log files
them under the kind `notification`.
"""

import json
import random
import time

from sqlalchemy import insert, select

from sandbox.models import Callback, Channel
from sandbox.profiles import chunks

OUTCOME_PREFIX = "notification:"
TYPES = ("verification", "change", "profile_disconnected")
CHANNELS = Channel.__table__


def iso(epoch):
    """Return an epoch time the way Cronofy writes times: 2026-03-02T09:14:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def channel_json(channel):
    """Return a channel as the API and the notifications show it."""
    return {"channel_id": channel.id, "callback_url": channel.callback_url, "filters": json.loads(channel.filters)}


def body(channel, kind, changes_since):
    """Return the raw JSON body of one notification for a channel."""
    return json.dumps({"notification": {"type": kind, "changes_since": iso(changes_since)},
                       "channel": channel_json(channel)})


def open_channels(db, account_ids):
    """Return the open channels of these accounts, oldest first."""
    found = []
    for part in chunks(account_ids):
        found += list(db.execute(select(CHANNELS).where(CHANNELS.c.account_id.in_(part),
                                                        CHANNELS.c.closed_at.is_(None))))
    return sorted(found, key=lambda channel: (channel.created_at, channel.id))


def wants_change(channel, calendar_id):
    """Tell whether a channel's filters let through a change of this calendar made outside the application."""
    filters = json.loads(channel.filters)
    if filters.get("only_managed"):
        return False  # changes made in the calendar itself, not through the API, are not "managed"
    wanted = filters.get("calendar_ids") or []
    return not wanted or calendar_id in wanted


def queue(db, channels, kind, moments, faults):
    """Queue `kind` for each channel, due at its account's moment ({account id: epoch}); return how many.

    Nothing is queued while the `notifications_off` fault is on; `duplicate_callbacks` sends each twice.
    """
    if faults.get("notifications_off") or not channels:
        return 0
    rows = []
    for channel in channels:
        moment = moments[channel.account_id]
        row = {"client_id": channel.client_id, "url": channel.callback_url, "body": body(channel, kind, moment),
               "outcome": f"{OUTCOME_PREFIX}{kind}", "due_at": moment}
        rows.append(row)
        if faults.get("duplicate_callbacks"):
            rows.append({**row, "due_at": moment + random.uniform(0.05, 0.3)})
    db.execute(insert(Callback.__table__), rows)
    return len(rows)


def notify(db, moments, kind, faults, calendar_id=None):
    """Queue `kind` for every open channel of the accounts in `moments` ({account id: epoch}); return how many."""
    channels = open_channels(db, list(moments))
    if kind == "change":
        channels = [channel for channel in channels if wants_change(channel, calendar_id)]
    return queue(db, channels, kind, moments, faults)
