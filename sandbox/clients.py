"""Registered API clients: authentication and the redirect/callback URIs each may use."""

import fnmatch
import hmac
import ipaddress
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select

from sandbox.errors import oauth_error
from sandbox.models import Client
from sandbox.secrets_util import new_id, random_string

CREDENTIALS = select(Client.__table__.c.client_id, Client.__table__.c.secrets).where(
    Client.__table__.c.client_id == bindparam("client_id"))


def ensure_demo_client(db, client_id, client_secret):
    """Create the demo client from the configuration, or update its secret, and return it."""
    client = db.get(Client, client_id)
    if client is None:
        client = Client(client_id=client_id, name="Demo client", allow_loopback=True, redirect_uris="")
        db.add(client)
    client.secrets = client_secret
    db.flush()
    return client


def register_client(db, redirect_uris, allow_loopback=False, name="", client_id=None, client_secret=None):
    """Register a client and return (client, secret)."""
    secret = client_secret or random_string(40)
    client = Client(client_id=client_id or new_id("cli"), secrets=secret, name=name,
                    redirect_uris="\n".join(redirect_uris), allow_loopback=allow_loopback)
    db.add(client)
    db.flush()
    return client, secret


def client_secrets(client):
    """Return the client's active secrets."""
    return parse_secrets(client.secrets)


def parse_secrets(value):
    """Return the active secrets held in a client's comma-separated `secrets` column."""
    return [s for s in value.split(",") if s]


def authenticate(db, client_id, client_secret):
    """Return the client (its id and secrets) whose id and secret match (client_secret_post), or raise a 401."""
    found = isinstance(client_id, str) and client_id
    # Read on every request, so a secret rotated through the admin counts at once.
    client = db.connection().execute(CREDENTIALS, {"client_id": client_id}).first() if found else None
    if client is None or not isinstance(client_secret, str):
        raise oauth_error("invalid_client", 401)
    if not any(hmac.compare_digest(client_secret.encode(), s.encode()) for s in client_secrets(client)):
        raise oauth_error("invalid_client", 401)
    return client


def find(db, client_id):
    """Return the client with this id, or None."""
    return db.get(Client, client_id) if isinstance(client_id, str) and client_id else None


def all_clients(db):
    """Return every registered client."""
    return list(db.scalars(select(Client).order_by(Client.created_at)))


def is_loopback(host):
    """Tell whether a host name is loopback (127.0.0.0/8, ::1 or localhost)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_http_url(uri):
    parts = urlsplit(uri) if isinstance(uri, str) else None
    return bool(parts and parts.scheme in ("http", "https") and parts.hostname)


def _matches_registered(uri, pattern):
    # Wildcards are allowed for sub-domains only (§3.1): https://*.example.com/path
    parts, wanted = urlsplit(uri), urlsplit(pattern)
    if parts.scheme != wanted.scheme or parts.path != wanted.path:
        return False
    return fnmatch.fnmatchcase(parts.netloc.lower(), wanted.netloc.lower())


def redirect_allowed(client, uri):
    """Tell whether the client may be sent back to this redirect URI."""
    if not _is_http_url(uri):
        return False
    if client.allow_loopback and is_loopback(urlsplit(uri).hostname):
        return True
    return any(_matches_registered(uri, p) for p in client.redirect_uris.split("\n") if p)


def callback_allowed(client, uri):
    """Tell whether the sandbox may POST delegated-access results to this URL for the client."""
    if not _is_http_url(uri):
        return False
    host = urlsplit(uri).hostname
    if client.allow_loopback and is_loopback(host):
        return True
    hosts = {urlsplit(p).hostname for p in client.redirect_uris.split("\n") if p}
    return any(fnmatch.fnmatchcase(host, h) for h in hosts if h)
