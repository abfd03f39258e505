"""Admin actions that break what works, as customers' tenants break: profiles disconnected, accounts revoked,
service accounts expired, removed or their domain's consent withdrawn, calendar data changed.

Each returns what it touched, so that tests and benchmarks know the truth they check the console against.
Notifications (§3.11) follow wherever Cronofy would send them.
"""

import math
import random
import time

from sqlalchemy import and_, exists, select, update

from sandbox import calendars, notifications, profiles
from sandbox.errors import field_error, not_found, unprocessable
from sandbox.models import AccessToken, Account, Domain, Grant, Member, ServiceAccount
from sandbox.tokens import revoke_grants, revoke_service_account

GRANTS = Grant.__table__


def _has_active_grant():
    return exists().where(and_(GRANTS.c.subject_type == "account", GRANTS.c.subject_id == Account.id,
                               GRANTS.c.status == "active"))


def find_accounts(db, email=None, account_id=None):
    """Return [(account, email)] of one mailbox (every client's account of it) or of one account id; 404 if none."""
    if not email and not account_id:
        raise unprocessable({"email": [field_error("required", "give an email or an account_id")]})
    query = select(Account, Member.email).join(Member, Member.id == Account.member_id)
    if account_id:
        query = query.where(Account.id == account_id)
    else:
        query = query.where(Member.email == str(email).strip().lower())
    found = list(db.execute(query.order_by(Account.client_id)))
    if not found:
        raise not_found("No delegated account for that mailbox")
    return found


def _entry(account, email, at=None):
    entry = {"email": email, "account_id": account.id, "profile_id": account.profile_id}
    if at is not None:
        entry["at"] = at
    return entry


def _disconnect(db, picked, moments, reason, faults):
    profiles.disconnect(db, moments, reason or profiles.DEFAULT_REASON)
    notifications.notify(db, moments, "profile_disconnected", faults)
    return sorted((_entry(account, email, moments[account.id]) for account, email in picked),
                  key=lambda entry: (entry["at"], entry["email"]))


def disconnect_profile(db, faults, email=None, account_id=None, reason=None, delay=0.0):
    """Disconnect the profile of one mailbox (every client's account of it) `delay` seconds from now."""
    picked = [(account, mail) for account, mail in find_accounts(db, email, account_id)
              if profiles.is_connected(db, account)]
    at = time.time() + max(0.0, delay)
    return _disconnect(db, picked, {account.id: at for account, _ in picked}, reason, faults)


def connected_accounts(db, domain):
    """Return [(account, email)] of a domain's authorized, connected profiles, in a stable order."""
    sas = select(ServiceAccount.id).where(ServiceAccount.status.not_in(profiles.ADMIN_REVOKED))
    rows = db.execute(select(Account, Member.email).join(Member, Member.id == Account.member_id)
                      .join(Domain, Domain.id == Member.domain_id)
                      .where(Domain.name == domain, Account.profile_revoked.is_(False), _has_active_grant(),
                             Account.service_account_id.in_(sas))
                      .order_by(Member.email, Account.client_id))
    gone = profiles.disconnections(db)
    return [(account, email) for account, email in rows if account.id not in gone]


def disconnect_share(db, faults, domain, percent, seed=None, over_seconds=0.0, reason=None):
    """Disconnect `percent` % of a domain's connected profiles, picked at random (seeded), at random moments
    within `over_seconds` from now; return (what was disconnected, the seed, how many could have been)."""
    seed = random.randrange(2 ** 31) if seed is None else seed
    candidates = connected_accounts(db, domain)
    rng = random.Random(seed)
    count = min(len(candidates), math.floor(len(candidates) * percent / 100 + 0.5))
    picked = rng.sample(candidates, count)
    now = time.time()
    moments = {account.id: now + (rng.uniform(0, over_seconds) if over_seconds else 0.0) for account, _ in picked}
    return _disconnect(db, picked, moments, reason, faults), seed, len(candidates)


def reconnect_profile(db, email=None, account_id=None):
    """Repair the admin-made disconnection of one mailbox's profiles; return their account ids."""
    ids = [account.id for account, _ in find_accounts(db, email, account_id)]
    profiles.reconnect(db, ids)
    return ids


def revoke_account(db, email=None, account_id=None):
    """Revoke every authorization of one mailbox's accounts (the user removed the app); return their ids."""
    found = find_accounts(db, email, account_id)
    ids = [account.id for account, _ in found]
    revoke_grants(db, list(db.scalars(select(Grant).where(Grant.subject_type == "account",
                                                          Grant.subject_id.in_(ids), Grant.status == "active"))))
    return ids


def change_calendar(db, faults, email=None, account_id=None, calendar_id=None):
    """Change a mailbox's calendar data (as its owner would); a `change` goes to the channels that want it."""
    changed = []
    for account, mail in find_accounts(db, email, account_id):
        owned = [c["calendar_id"] for c in calendars.calendars(db, account)]
        target = calendar_id or (owned[0] if owned else None)
        if target is None or target not in owned:
            raise unprocessable({"calendar_id": [field_error("invalid", "is not a calendar of this account")]})
        now = time.time()
        version = profiles.change_calendar(db, account.id, now)
        if profiles.is_connected(db, account):
            notifications.notify(db, {account.id: now}, "change", faults, calendar_id=target)
        changed.append({**_entry(account, mail), "calendar_id": target, "version": version})
    return changed


def _service_accounts(db, service_account_id=None, domain=None):
    query = select(ServiceAccount).where(ServiceAccount.status == "active")
    if service_account_id:
        query = query.where(ServiceAccount.id == service_account_id)
    if domain:
        query = query.join(Domain, Domain.id == ServiceAccount.domain_id).where(Domain.name == domain)
    return list(db.scalars(query))


def expire_service_accounts(db, service_account_id=None, domain=None):
    """End the access tokens of active service accounts now (a refresh still works); return their ids."""
    sas = _service_accounts(db, service_account_id, domain)
    grants = select(Grant.id).where(Grant.subject_type == "service_account",
                                    Grant.subject_id.in_([sa.id for sa in sas]))
    now = time.time()
    db.execute(update(AccessToken).where(AccessToken.grant_id.in_(grants), AccessToken.expires_at >= now)
               .values(expires_at=now - 1))
    return [sa.id for sa in sas]


def remove_service_accounts(db, faults, status, cascade, service_account_id=None, domain=None):
    """The provider side shuts Cronofy out: end service accounts with `status`; their profiles disconnect."""
    sas = _service_accounts(db, service_account_id, domain)
    under = profiles.accounts_under(db, [sa.id for sa in sas])
    recorded, now = profiles.disconnections(db, [account.id for account in under]), time.time()
    # Profiles already disconnected (from a moment now past) were told so then.
    accounts = [account for account in under if not account.profile_revoked
                and not (account.id in recorded and recorded[account.id][0] <= now)]
    for sa in sas:
        revoke_service_account(db, sa, cascade, status=status)
    db.flush()
    notifications.notify(db, {account.id: now for account in accounts}, "profile_disconnected", faults)
    return [sa.id for sa in sas]


def withdraw_consent(db, faults, domain, cascade):
    """The domain's admin withdraws consent (removes the Marketplace app, revokes the Graph consent)."""
    if not domain or db.scalar(select(Domain.id).where(Domain.name == domain)) is None:
        raise unprocessable({"domain": [field_error("invalid", "must be one of the seeded domains")]})
    return remove_service_accounts(db, faults, "consent_withdrawn", cascade, domain=domain)
