"""Admin operations of the sandbox: simulate the domain admin revoking a service account, list directory and grants."""

import time

from sqlalchemy import and_, case, func, select

from sandbox import disruptions, notifications, profiles
from sandbox.models import Account, Callback, Channel, Domain, Grant, Member, ServiceAccount


def revoke_by_domain_admin(db, service_account_id=None, domain=None, cascade=False, faults=None):
    """Mark active service accounts as revoked by the domain admin; return their ids.

    Their profiles lose working credentials: each open channel of their accounts gets `profile_disconnected`.
    """
    return disruptions.remove_service_accounts(db, faults or {}, "revoked_by_admin", cascade,
                                               service_account_id=service_account_id, domain=domain)


def directory(db, domain=None, kind=None, trait=None, limit=100, offset=0):
    """Return members of the seeded directories, filtered, as JSON-ready dicts."""
    query = select(Member, Domain.name).join(Domain, Domain.id == Member.domain_id)
    if domain:
        query = query.where(Domain.name == domain)
    if kind:
        query = query.where(Member.kind == kind)
    if trait:
        query = query.where(Member.trait.is_(None) if trait == "none" else Member.trait == trait)
    rows = db.execute(query.order_by(Member.id).limit(limit).offset(offset))
    return [{"email": m.email, "name": m.name, "kind": m.kind, "trait": m.trait, "domain": name,
             "capacity": m.capacity} for m, name in rows]


def callback_counts(db, notifications_only=False):
    """Return {status: count} of the delegated-access callbacks (or of the push notifications) queued."""
    is_notification = Callback.outcome.startswith(notifications.OUTCOME_PREFIX)
    query = select(Callback.status, func.count()).where(is_notification if notifications_only else ~is_notification)
    return dict(db.execute(query.group_by(Callback.status)).all())


def channels(db, email=None, account_id=None, status=None):
    """Return the notification channels with their mailbox, newest first, filtered by mailbox and open/closed."""
    query = (select(Channel, Member.email).join(Account, Account.id == Channel.account_id)
             .join(Member, Member.id == Account.member_id))
    if email:
        query = query.where(Member.email == email.strip().lower())
    if account_id:
        query = query.where(Channel.account_id == account_id)
    if status:
        query = query.where(Channel.closed_at.is_(None) if status == "open" else Channel.closed_at.is_not(None))
    rows = db.execute(query.order_by(Channel.created_at.desc(), Channel.id))
    return [{**notifications.channel_json(channel), "email": mail, "account_id": channel.account_id,
             "client_id": channel.client_id, "created_at": channel.created_at, "closed_at": channel.closed_at}
            for channel, mail in rows]


SERVICE_ACCOUNT_STATUSES = ("active", "revoked", "revoked_by_admin", "consent_withdrawn")


def service_accounts(db, domain=None, status=None, limit=50):
    """Return the service accounts with their domain names and active grants, newest first."""
    active_grants = (select(func.count(Grant.id))
                     .where(Grant.subject_type == "service_account", Grant.subject_id == ServiceAccount.id,
                            Grant.status == "active").correlate(ServiceAccount).scalar_subquery())
    query = (select(ServiceAccount, Domain.name, active_grants.label("active_grants"))
             .join(Domain, Domain.id == ServiceAccount.domain_id))
    if domain:
        query = query.where(Domain.name == domain.strip().lower())
    if status:
        query = query.where(ServiceAccount.status == status)
    rows = db.execute(query.order_by(ServiceAccount.created_at.desc(), ServiceAccount.id).limit(limit))
    return [{"id": sa.id, "domain": name, "provider": sa.provider, "status": sa.status, "scope": sa.scope,
             "delegated_scope": sa.delegated_scope, "client_id": sa.client_id, "active_grants": int(grants),
             "created_at": sa.created_at.isoformat()} for sa, name, grants in rows]


GRANT_STATUSES = ("active", "inactive")  # accounts holding at least one active grant, or none


def grants(db, email=None, domain=None, status=None):
    """Return per delegated account its mailbox, how many of its grants are active and how many it has in all."""
    active = func.coalesce(func.sum(case((Grant.status == "active", 1), else_=0)), 0)
    query = (select(Account.id, Account.client_id, Member.email, Domain.name, active.label("active"),
                    func.count(Grant.id).label("total"))
             .join(Member, Member.id == Account.member_id).join(Domain, Domain.id == Member.domain_id)
             .outerjoin(Grant, and_(Grant.subject_type == "account", Grant.subject_id == Account.id,
                                    Grant.client_id == Account.client_id))
             .group_by(Account.id, Account.client_id, Member.email, Domain.name)
             .order_by(Member.email, Account.client_id))
    if email:
        query = query.where(Member.email == email.strip().lower())
    if domain:
        query = query.where(Domain.name == domain.strip().lower())
    if status:
        query = query.having(active > 0 if status == "active" else active == 0)
    return [{"email": row.email, "account_id": row.id, "client_id": row.client_id, "domain": row.name,
             "active_grants": int(row.active), "total_grants": row.total} for row in db.execute(query)]


PROFILE_STATUSES = ("connected", "disconnected")


def profile_states(db, domain=None, email=None, status=None):
    """Return each delegated account's profile: connected, or since when and why not (scheduled ones show
    `disconnect_at` while still connected)."""
    query = (select(Account, Member.email, Domain.name, ServiceAccount.status)
             .join(Member, Member.id == Account.member_id).join(Domain, Domain.id == Member.domain_id)
             .join(ServiceAccount, ServiceAccount.id == Account.service_account_id))
    if domain:
        query = query.where(Domain.name == domain.strip().lower())
    if email:
        query = query.where(Member.email == email.strip().lower())
    rows = list(db.execute(query.order_by(Member.email, Account.client_id)))
    recorded, now = profiles.disconnections(db, [row[0].id for row in rows]), time.time()
    found = []
    for account, mail, domain_name, sa_status in rows:
        at, reason = recorded.get(account.id, (None, None))
        entry = {"email": mail, "account_id": account.id, "profile_id": account.profile_id, "domain": domain_name,
                 "client_id": account.client_id, "profile_connected": True}
        if sa_status in profiles.ADMIN_REVOKED:
            entry.update(profile_connected=False, reason=sa_status)
        elif at is not None and at <= now:
            entry.update(profile_connected=False, reason=reason, disconnected_at=at)
        elif at is not None:
            entry["disconnect_at"] = at
        if status is None or entry["profile_connected"] == (status == "connected"):
            found.append(entry)
    return found
