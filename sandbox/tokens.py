"""Codes and tokens: issue, exchange (§3.2, §3.3.2), refresh with rotation (§3.6), revoke (§3.7.1), bearer checks."""

import time

from sqlalchemy import bindparam, insert, select, update

from sandbox import channels, profiles
from sandbox.directory import PROVIDERS
from sandbox.errors import locked, oauth_error, unauthorized
from sandbox.models import AccessToken, Account, Code, Grant, Member, ServiceAccount
from sandbox.secrets_util import digest, new_code, new_token

CODES, GRANTS, ACCESS_TOKENS = Code.__table__, Grant.__table__, AccessToken.__table__
ACCOUNTS, MEMBERS, SERVICE_ACCOUNTS = Account.__table__, Member.__table__, ServiceAccount.__table__

# The statements of a code exchange are built once: building and cache-keying them per request cost
# more CPU than running them.
# One conditional UPDATE: unknown, another client's, used, expired or a different redirect_uri (byte
# for byte, query string included, §3.2, §3.3.2) all leave the code untouched and answer invalid_grant;
# of two concurrent exchanges only one wins.
CONSUME_CODE = (update(CODES).where(CODES.c.code_hash == bindparam("b_code_hash"),
                                    CODES.c.client_id == bindparam("b_client_id"), CODES.c.used_at.is_(None),
                                    CODES.c.expires_at >= bindparam("now"),
                                    CODES.c.redirect_uri == bindparam("b_redirect_uri"))
                .values(used_at=bindparam("now")).returning(CODES.c.kind, CODES.c.subject_id, CODES.c.scope))
INSERT_GRANT = insert(GRANTS).returning(GRANTS.c.id)
INSERT_ACCESS_TOKEN = insert(ACCESS_TOKENS)
LINKING_PROFILE = (select(ACCOUNTS.c.profile_id, MEMBERS.c.email, SERVICE_ACCOUNTS.c.provider)
                   .join(MEMBERS, MEMBERS.c.id == ACCOUNTS.c.member_id)
                   .join(SERVICE_ACCOUNTS, SERVICE_ACCOUNTS.c.id == ACCOUNTS.c.service_account_id)
                   .where(ACCOUNTS.c.id == bindparam("account_id")))


def code_row(client_id, kind, subject_id, scope, redirect_uri, ttl, starts_at=None):
    """Return (code in clear, the row that stores it as a digest) for a new single-use code."""
    code = new_code()
    start = time.time() if starts_at is None else starts_at
    return code, {"code_hash": digest(code), "client_id": client_id, "kind": kind, "subject_id": subject_id,
                  "scope": scope, "redirect_uri": redirect_uri, "expires_at": start + ttl, "used_at": None}


def issue_code(db, client_id, kind, subject_id, scope, redirect_uri, ttl, starts_at=None):
    """Store a single-use code and return it in clear (the only time it exists in clear)."""
    code, row = code_row(client_id, kind, subject_id, scope, redirect_uri, ttl, starts_at)
    db.add(Code(**row))
    return code


def _consume_code(db, client, code, redirect_uri):
    now = time.time()
    row = db.connection().execute(CONSUME_CODE, {"b_code_hash": digest(code), "b_client_id": client.client_id,
                                                 "now": now, "b_redirect_uri": redirect_uri}).first()
    if row is None:
        raise oauth_error("invalid_grant")
    return row


def _new_grant(db, client_id, subject_type, subject_id, scope):
    refresh = new_token()
    grant_id = db.connection().execute(INSERT_GRANT, {"client_id": client_id, "subject_type": subject_type,
                                                      "subject_id": subject_id, "scope": scope,
                                                      "refresh_hash": digest(refresh)}).scalar_one()
    return grant_id, refresh


def _issue_access(db, grant_id, ttl):
    token = new_token()
    db.connection().execute(INSERT_ACCESS_TOKEN, {"token_hash": digest(token), "grant_id": grant_id,
                                                  "expires_at": time.time() + ttl, "revoked": False})
    return token


def _ttl(subject_type, limits):
    return limits["sa_token_ttl"] if subject_type == "service_account" else limits["account_token_ttl"]


def _base_response(subject_type, scope, access, refresh, limits):
    return {"token_type": "bearer", "access_token": access, "expires_in": int(_ttl(subject_type, limits)),
            "refresh_token": refresh, "scope": scope}


def _grant_response(db, client_id, subject_type, subject_id, scope, limits):
    grant_id, refresh_token = _new_grant(db, client_id, subject_type, subject_id, scope)
    access = _issue_access(db, grant_id, _ttl(subject_type, limits))
    return _base_response(subject_type, scope, access, refresh_token, limits)


def linking_profile(db, account_id):
    """Return the linking_profile object of an account token (§3.3.2)."""
    row = db.connection().execute(LINKING_PROFILE, {"account_id": account_id}).one()
    return {"provider_name": row.provider, "provider_service": PROVIDERS[row.provider]["service"],
            "profile_id": row.profile_id, "profile_name": row.email}


def account_tokens(db, client_id, account_id, scope, limits):
    """Authorize a delegated account and return its token response (§3.3.2, also §3.5)."""
    body = _grant_response(db, client_id, "account", account_id, scope, limits)
    body.update(account_id=account_id, sub=account_id, linking_profile=linking_profile(db, account_id))
    return body


def exchange_code(db, client, code, redirect_uri, limits):
    """Swap a code for tokens; raise invalid_grant when unknown, used, expired or redirect_uri differs."""
    row = _consume_code(db, client, code, redirect_uri)
    if row.kind == "account":
        return account_tokens(db, client.client_id, row.subject_id, row.scope, limits)
    body = _grant_response(db, client.client_id, row.kind, row.subject_id, row.scope, limits)
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
    access = _issue_access(db, grant.id, _ttl(grant.subject_type, limits))
    return _base_response(grant.subject_type, grant.scope, access, new_refresh, limits)


def revoke_grants(db, grants):
    """Revoke authorizations and every access token issued under them."""
    ids = [g.id for g in grants]
    if not ids:
        return
    db.execute(update(Grant).where(Grant.id.in_(ids)).values(status="revoked"))
    db.execute(update(AccessToken).where(AccessToken.grant_id.in_(ids)).values(revoked=True))
    # An account left without an authorization gets no more notifications: its channels close (inferred).
    channels.close_unauthorized(db, [g.subject_id for g in grants if g.subject_type == "account"])


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
    """Return the account of a grant; 423 while its profile is disconnected (§4, §6.4)."""
    account = db.get(Account, grant.subject_id)
    if account is None:
        raise unauthorized()
    sa = db.get(ServiceAccount, account.service_account_id)
    if sa.status in profiles.ADMIN_REVOKED:
        raise locked("The domain administrator removed the service account's access to this calendar")
    if profiles.disconnected_since(db, account.id) is not None:
        raise locked("Cronofy has no working provider credentials for this calendar profile")
    return account
