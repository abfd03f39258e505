"""What a delegated account sees of its mailbox: profile, calendars and deterministic free/busy blocks."""

import random
from datetime import date, datetime, time as dtime, timedelta, timezone

from sandbox import profiles
from sandbox.directory import PROVIDERS
from sandbox.errors import field_error, unprocessable
from sandbox.models import Member, ServiceAccount
from sandbox.secrets_util import digest

MAX_RANGE_DAYS = 35


def calendars(db, account):
    """Return the calendars of the account's profile (none once the profile was revoked)."""
    if account.profile_revoked:
        return []
    member = db.get(Member, account.member_id)
    provider = db.get(ServiceAccount, account.service_account_id).provider
    base = f"cal_{digest(account.id)[:20]}"
    names = [(member.name if member.kind != "user" else "Calendar", True, False)]
    if member.kind == "user":
        names.append(("Holidays", False, True))
    return [{"provider_name": provider, "profile_id": account.profile_id, "profile_name": member.email,
             "calendar_id": f"{base}_{index}", "calendar_name": name, "calendar_readonly": readonly,
             "calendar_deleted": False, "calendar_primary": primary,
             "calendar_integrated_conferencing_available": provider != "exchange",
             "calendar_attachments_available": False, "permission_level": "sandbox"}
            for index, (name, primary, readonly) in enumerate(names, start=1)]


def profile(db, account, connected, relink_url=None):
    """Return the account's profile as userinfo shows it (§3.8); a disconnected one carries its relink URL."""
    member = db.get(Member, account.member_id)
    provider = db.get(ServiceAccount, account.service_account_id).provider
    data = {"provider_name": provider, "provider_service": PROVIDERS[provider]["service"],
            "profile_id": account.profile_id, "profile_name": member.email, "profile_connected": connected,
            "profile_initial_sync_required": False,
            "profile_calendars": [_short(c) for c in calendars(db, account)]}
    if not connected and relink_url:
        data["profile_relink_url"] = relink_url
    if provider == "office365":
        data["provider_protocol"] = "graph_api"
    return data


def _short(calendar):
    keys = ("calendar_id", "calendar_name", "calendar_readonly", "calendar_deleted", "calendar_primary",
            "calendar_integrated_conferencing_available", "calendar_attachments_available", "permission_level")
    return {key: calendar[key] for key in keys}


def _parse_day(value, name):
    try:
        return date.fromisoformat(value[:10])
    except (TypeError, ValueError):
        raise unprocessable({name: [field_error("invalid", "must be a date (YYYY-MM-DD)")]}) from None


def date_range(args):
    """Return (first day, day after the last) from the from/to query parameters, validated."""
    today = datetime.now(timezone.utc).date()
    start = _parse_day(args["from"], "from") if args.get("from") else today
    end = _parse_day(args["to"], "to") if args.get("to") else start + timedelta(days=7)
    if end <= start:
        raise unprocessable({"to": [field_error("invalid", "must be after from")]})
    if (end - start).days > MAX_RANGE_DAYS:
        raise unprocessable({"to": [field_error("invalid", f"must be within {MAX_RANGE_DAYS} days of from")]})
    return start, end


def free_busy(db, account, start, end):
    """Return busy blocks of the primary calendar; the same account and day always give the same blocks."""
    primary = calendars(db, account)[:1]
    # An admin-made change of the calendar (profiles.change_calendar) gives the same days other blocks.
    version = profiles.calendar_version(db, account.id)
    salt = f"{account.id}:{version}" if version else account.id
    blocks = []
    for offset in range((end - start).days):
        day = start + timedelta(days=offset)
        if day.weekday() >= 5 or not primary:
            continue
        rng = random.Random(f"{salt}:{day.isoformat()}")
        for hour in sorted(rng.sample(range(8, 17), rng.randint(1, 4))):
            begin = datetime.combine(day, dtime(hour, rng.choice((0, 30))), tzinfo=timezone.utc)
            finish = begin + timedelta(minutes=rng.choice((30, 45, 60)))
            blocks.append({"calendar_id": primary[0]["calendar_id"], "start": _iso(begin), "end": _iso(finish),
                           "free_busy_status": rng.choice(("busy", "busy", "tentative"))})
    return blocks


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
