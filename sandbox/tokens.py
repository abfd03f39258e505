"""Codes and tokens: issue, exchange (§3.2, §3.3.2), refresh with rotation (§3.6), revoke (§3.7.1), bearer checks."""

import time

from sqlalchemy import select, update

from sandbox.directory import PROVIDERS
from sandbox.errors import locked, oauth_error, unauthorized
from sandbox.models import AccessToken, Account, Code, Grant, Member, ServiceAccount
from sandbox.secrets_util import digest, new_code, new_token


def issue_code(db, client_id, kind, subject_id, scope, redirect_uri, ttl, starts_at=None):
    """Store a single-use code and return it in clear (the only time it exists in clear)."""
    code = new_code()
    start = time.time() if starts_at is None else starts_at
    db.add(Code(code_hash=digest(code), client_id=client_id, kind=kind, subject_id=subject_id,
                scope=scope, redirect_uri=redirect_uri, expires_at=start + ttl))
    return code


def _consume_code(db, client, code, redirect_uri):
    row = db.get(Code, digest(code))
    now = time.time()
    if row is None or row.client_id != client.client_id or row.used_at is not None or row.expires_at < now:
        raise oauth_error("invalid_grant")
    if row.redirect_uri != redirect_uri:  # byte for byte, query string included (§3.2, §3.3.2)
        raise oauth_error("invalid_grant")
    claimed = db.execute(update(Code).where(Code.code_hash == row.code_hash, Code.used_at.is_(None))
                         .values(used_at=now))
    if claimed.rowcount != 1:
        raise oauth_error("invalid_grant")
    return row


def _new_grant(db, client_id, subject_type, subject_id, scope):
    refresh = new_token()
    grant = Grant(client_id=client_id, subject_type=subject_type, subject_id=subject_id, scope=scope,
                  refresh_hash=digest(refresh))
    db.add(grant)
    db.flush()
    return grant, refresh


def _issue_access(db, grant, ttl):
    token = new_token()
    db.add(AccessToken(token_hash=digest(token), grant_id=grant.id, expires_at=time.time() + ttl))
    return token


def _ttl(grant, limits):
    return limits["sa_token_ttl"] if grant.subject_type == "service_account" else limits["account_token_ttl"]


def _base_response(grant, access, refresh, limits):
    return {"token_type": "bearer", "access_token": access, "expires_in": int(_ttl(grant, limits)),
            "refresh_token": refresh, "scope": grant.scope}


def linking_profile(db, account):
    """Return the linking_profile object of an account token (§3.3.2)."""
    member = db.get(Member, account.member_id)
    provider = db.get(ServiceAccount, account.service_account_id).provider
    return {"provider_name": provider, "provider_service": PROVIDERS[provider]["service"],
            "profile_id": account.profile_id, "profile_name": member.email}


def account_tokens(db, client_id, account, scope, limits):
    """Authorize a delegated account and return its token response (§3.3.2, also §3.5)."""
    grant, refresh_token = _new_grant(db, client_id, "account", account.id, scope)
    body = _base_response(grant, _issue_access(db, grant, _ttl(grant, limits)), refresh_token, limits)
    body.update(account_id=account.id, sub=account.id, linking_profile=linking_profile(db, account))
    return body


def exchange_code(db, client, code, redirect_uri, limits):
    """Swap a code for tokens; raise invalid_grant when unknown, used, expired or redirect_uri differs."""
    row = _consume_code(db, client, code, redirect_uri)
    if row.kind == "account":
        return account_tokens(db, client.client_id, db.get(Account, row.subject_id), row.scope, limits)
    grant, refresh_token = _new_grant(db, client.client_id, row.kind, row.subject_id, row.scope)
    body = _base_response(grant, _issue_access(db, grant, _ttl(grant, limits)), refresh_token, limits)
    body["service_account_id"] = row.subject_id
    return body


def refresh(db, client, refresh_token, limits, rotate):
    """Issue a new access token from a refresh token; rotate the refresh token so the old one dies."""
    grant = db.scalar(select(Grant).where(Grant.refresh_hash == digest(refresh_token)))
    if grant is None or grant.client_id != client.client_id or grant.status != "active":
        raise oauth_error("invalid_grant")
    new_refresh = refresh_token
    if rotate:
        new_refresh = new_token()
        # Conditional update: of two concurrent refreshes with the same token only one wins (§3.6).
        swapped = db.execute(update(Grant).where(Grant.id == grant.id, Grant.refresh_hash == digest(refresh_token))
                             .values(refresh_hash=digest(new_refresh)))
        if swapped.rowcount != 1:
            raise oauth_error("invalid_grant")
    access = _issue_access(db, grant, _ttl(grant, limits))
    return _base_response(grant, access, new_refresh, limits)


def revoke_grants(db, grants):
    """Revoke authorizations and every access token issued under them."""
    ids = [g.id for g in grants]
    if not ids:
        return
    db.execute(update(Grant).where(Grant.id.in_(ids)).values(status="revoked"))
    db.execute(update(AccessToken).where(AccessToken.grant_id.in_(ids)).values(revoked=True))


def _grants_of(db, client_id, subject_ids):
    return list(db.scalars(select(Grant).where(Grant.client_id == client_id, Grant.subject_id.in_(subject_ids),
                                               Grant.status == "active")))


def revoke_service_account(db, service_account, cascade, status="revoked"):
    """End a service-account authorization; with cascade also the delegated accounts obtained through it."""
    service_account.status = status
    subjects = [service_account.id]
    if cascade:
        subjects += list(db.scalars(select(Account.id).where(Account.service_account_id == service_account.id)))
    revoke_grants(db, _grants_of(db, service_account.client_id, subjects))


def revoke(db, client, token=None, sub=None, cascade=False):
    """Revoke by token (refresh or access; wins over sub) or by sub; unknown values are ignored (§3.7.1)."""
    grants = []
    if token:
        grant = db.scalar(select(Grant).where(Grant.refresh_hash == digest(token)))
        if grant is None:
            access = db.get(AccessToken, digest(token))
            grant = db.get(Grant, access.grant_id) if access else None
        grants = [grant] if grant is not None and grant.client_id == client.client_id else []
    elif sub:
        grants = _grants_of(db, client.client_id, [sub])
    for grant in grants:
        if grant.subject_type == "service_account":
            sa = db.get(ServiceAccount, grant.subject_id)
            revoke_service_account(db, sa, cascade)
    revoke_grants(db, grants)


def bearer_grant(db, header):
    """Return the active grant behind an Authorization: Bearer header, or raise 401."""
    if not header or not header.startswith("Bearer "):
        raise unauthorized("A bearer token is required")
    access = db.get(AccessToken, digest(header[7:].strip()))
    if access is None or access.revoked or access.expires_at < time.time():
        raise unauthorized()
    grant = db.get(Grant, access.grant_id)
    if grant is None or grant.status != "active":
        raise unauthorized()
    return grant


def client_of_bearer(db, header):
    """Return the client id of a bearer token without judging it (for rate limiting), or None."""
    if not header or not header.startswith("Bearer "):
        return None
    access = db.get(AccessToken, digest(header[7:].strip()))
    grant = db.get(Grant, access.grant_id) if access else None
    return grant.client_id if grant else None


def service_account_of(db, grant):
    """Return the active service account of a grant, or raise 401."""
    sa = db.get(ServiceAccount, grant.subject_id) if grant.subject_type == "service_account" else None
    if sa is None or sa.status != "active":
        raise unauthorized()
    return sa


def account_of(db, grant):
    """Return the account of a grant; 423 when its service account was revoked by the domain admin."""
    account = db.get(Account, grant.subject_id)
    if account is None:
        raise unauthorized()
    sa = db.get(ServiceAccount, account.service_account_id)
    if sa.status == "revoked_by_admin":
        raise locked("The domain administrator removed the service account's access to this calendar")
    return account
