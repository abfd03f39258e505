"""The state of each delegated account's calendar profile: connected or not (§3.8), and its data's version.

A profile is disconnected when the domain admin removed the service account behind it or withdrew the
domain's consent, or when an admin action disconnected it (a mailbox suspended, moved outside the access
policy, ...). A disconnection may be scheduled: it holds from `disconnected_at` on, so that a benchmark can
have profiles break "at random moments" with one call and know exactly when each broke.
"""

import time

from sqlalchemy import bindparam, insert, select, update

from sandbox.models import Account, ProfileState, ServiceAccount

STATES = ProfileState.__table__
ADMIN_REVOKED = ("revoked_by_admin", "consent_withdrawn")  # the provider side no longer lets Cronofy in
DEFAULT_REASON = "provider_credentials_rejected"
CHUNK = 500  # ids per IN list, well below SQLite's bound parameters

SET_DISCONNECTED = (update(STATES).where(STATES.c.account_id == bindparam("b_account_id"))
                    .values(disconnected_at=bindparam("b_at"), disconnect_reason=bindparam("b_reason")))


def chunks(ids):
    """Yield slices of a list small enough for one IN clause."""
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def disconnected_since(db, account_id, now=None):
    """Return when the account's profile was disconnected by an admin action, or None while it is connected."""
    row = db.get(ProfileState, account_id)
    moment = row.disconnected_at if row is not None else None
    if moment is None or moment > (time.time() if now is None else now):
        return None
    return moment


def is_connected(db, account, sa=None):
    """Tell whether Cronofy holds working provider credentials for the account's profile."""
    sa = sa or db.get(ServiceAccount, account.service_account_id)
    return sa.status not in ADMIN_REVOKED and disconnected_since(db, account.id) is None


def relink_url(base_url, account):
    """Return the profile_relink_url of a disconnected profile (on the app host, §3.8)."""
    return f"{base_url.rstrip('/')}/relink/profiles/{account.profile_id}"


def _ensure_rows(db, account_ids):
    existing = set()
    for part in chunks(account_ids):
        existing.update(db.scalars(select(STATES.c.account_id).where(STATES.c.account_id.in_(part))))
    missing = [{"account_id": account_id, "calendar_version": 0} for account_id in account_ids
               if account_id not in existing]
    if missing:
        db.execute(insert(STATES), missing)


def disconnect(db, moments, reason=DEFAULT_REASON):
    """Mark profiles disconnected from the given moments on: {account id: epoch seconds}."""
    if not moments:
        return
    _ensure_rows(db, list(moments))
    db.execute(SET_DISCONNECTED, [{"b_account_id": account_id, "b_at": at, "b_reason": reason[:40]}
                                  for account_id, at in moments.items()])


def reconnect(db, account_ids):
    """Clear the admin-made disconnections of these accounts (a successful re-authorization repairs them)."""
    for part in chunks(account_ids):
        db.execute(update(STATES).where(STATES.c.account_id.in_(part), STATES.c.disconnected_at.is_not(None))
                   .values(disconnected_at=None, disconnect_reason=None))


def change_calendar(db, account_id, now=None):
    """Record a change of the account's calendar data; return the new data version."""
    _ensure_rows(db, [account_id])
    row = db.get(ProfileState, account_id)
    row.calendar_version = (row.calendar_version or 0) + 1
    row.calendar_changed_at = time.time() if now is None else now
    db.flush()
    return row.calendar_version


def calendar_version(db, account_id):
    """Return how many times the account's calendar data changed (0: as seeded)."""
    row = db.get(ProfileState, account_id)
    return row.calendar_version if row is not None else 0


def disconnections(db, account_ids=None):
    """Return {account id: (disconnected_at, reason)} of the disconnections recorded (scheduled ones included)."""
    query = select(STATES.c.account_id, STATES.c.disconnected_at, STATES.c.disconnect_reason).where(
        STATES.c.disconnected_at.is_not(None))
    if account_ids is None:
        return {row.account_id: (row.disconnected_at, row.disconnect_reason) for row in db.execute(query)}
    found = {}
    for part in chunks(account_ids):
        found.update({row.account_id: (row.disconnected_at, row.disconnect_reason)
                      for row in db.execute(query.where(STATES.c.account_id.in_(part)))})
    return found


def accounts_under(db, service_account_ids):
    """Return the accounts whose profiles a set of service accounts gives access to."""
    found = []
    for part in chunks(service_account_ids):
        found += list(db.scalars(select(Account).where(Account.service_account_id.in_(part))))
    return found
