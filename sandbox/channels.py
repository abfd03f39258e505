"""Notification channels of delegated accounts (§3.11): open, list, close; closed with the authorization."""

import json
import time
from urllib.parse import urlsplit

from sqlalchemy import and_, exists, select, update

from sandbox import clients, notifications
from sandbox.errors import field_error, not_found, unprocessable
from sandbox.models import Channel, Grant
from sandbox.profiles import chunks
from sandbox.secrets_util import new_id

MAX_CALLBACK_URL = 128  # pycronofy: "Must not be longer than 128 characters" (sdk)
CHANNELS, GRANTS = Channel.__table__, Grant.__table__


def _callback_errors(client, url):
    if url is None or url == "":
        return [field_error("required", "required")]
    if not isinstance(url, str):
        return [field_error("invalid", "must be a string")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [field_error("invalid", "must be an http or https URL")]
    if len(url) > MAX_CALLBACK_URL:
        return [field_error("too_long", f"must be at most {MAX_CALLBACK_URL} characters")]
    if not clients.callback_allowed(client, url):
        return [field_error("invalid", "is not an allowed callback URL")]
    return []


def _filter_errors(filters):
    if not isinstance(filters, dict):
        return {"filters": [field_error("invalid", "must be an object")]}
    errors = {}
    ids = filters.get("calendar_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        errors["filters[calendar_ids]"] = [field_error("invalid", "must be a list of calendar ids")]
    if "only_managed" in filters and not isinstance(filters["only_managed"], bool):
        errors["filters[only_managed]"] = [field_error("invalid", "must be true or false")]
    return errors


def parse(client, data):
    """Return (callback_url, filters) of a channel request; raise 422 in Cronofy's error shape (§4)."""
    if not isinstance(data, dict):
        raise unprocessable({"body": [field_error("invalid", "must be a JSON object")]})
    errors = {}
    url_errors = _callback_errors(client, data.get("callback_url"))
    if url_errors:
        errors["callback_url"] = url_errors
    filters = data.get("filters")
    filters = {} if filters is None else filters
    errors.update(_filter_errors(filters))
    if errors:
        raise unprocessable(errors)
    kept = {key: filters[key] for key in ("calendar_ids", "only_managed") if key in filters}
    return data["callback_url"], kept


def create(db, account, callback_url, filters, faults):
    """Open a channel for the account and queue its `verification` notification; return the channel."""
    now = time.time()
    channel = Channel(id=new_id("chn"), account_id=account.id, client_id=account.client_id,
                      callback_url=callback_url, filters=json.dumps(filters), created_at=now)
    db.add(channel)
    db.flush()
    notifications.queue(db, [channel], "verification", {account.id: now}, faults)
    return channel


def list_open(db, account):
    """Return the account's open channels, oldest first."""
    return list(db.scalars(select(Channel).where(Channel.account_id == account.id, Channel.closed_at.is_(None))
                           .order_by(Channel.created_at, Channel.id)))


def close(db, account, channel_id):
    """Close one open channel of the account; 404 for an unknown, closed or another account's channel."""
    closed = db.execute(update(Channel).where(Channel.id == channel_id, Channel.account_id == account.id,
                                              Channel.closed_at.is_(None)).values(closed_at=time.time()))
    if closed.rowcount != 1:
        raise not_found("Channel not found")


def close_unauthorized(db, account_ids):
    """Close the open channels of accounts left without an active authorization (revoked, inferred)."""
    live = exists().where(and_(GRANTS.c.subject_type == "account", GRANTS.c.subject_id == CHANNELS.c.account_id,
                               GRANTS.c.status == "active"))
    for part in chunks(account_ids):
        db.execute(update(CHANNELS).where(CHANNELS.c.account_id.in_(part), CHANNELS.c.closed_at.is_(None), ~live)
                   .values(closed_at=time.time()))


def as_json(channel):
    """Return a channel as `GET /v1/channels` lists it."""
    return notifications.channel_json(channel)
