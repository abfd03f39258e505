"""Admin operations of the sandbox: simulate the domain admin revoking a service account, list directory and grants."""

from sqlalchemy import and_, case, func, select

from sandbox.models import Account, Callback, Domain, Grant, Member, ServiceAccount
from sandbox.tokens import revoke_service_account


def revoke_by_domain_admin(db, service_account_id=None, domain=None, cascade=False):
    """Mark active service accounts as revoked by the domain admin; return their ids."""
    query = select(ServiceAccount).where(ServiceAccount.status == "active")
    if service_account_id:
        query = query.where(ServiceAccount.id == service_account_id)
    if domain:
        query = query.join(Domain, Domain.id == ServiceAccount.domain_id).where(Domain.name == domain)
    revoked = []
    for sa in db.scalars(query).all():
        revoke_service_account(db, sa, cascade, status="revoked_by_admin")
        revoked.append(sa.id)
    return revoked


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


def callback_counts(db):
    """Return {status: count} of the callback queue."""
    return dict(db.execute(select(Callback.status, func.count()).group_by(Callback.status)).all())


SERVICE_ACCOUNT_STATUSES = ("active", "revoked", "revoked_by_admin")


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
