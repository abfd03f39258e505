"""Random identifiers, codes and tokens; tokens and codes are only ever stored as digests."""

import base64
import hashlib
import hmac
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_string(length):
    """Return a random ASCII alphanumeric string."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_code():
    """Return a new authorization code: always 32 ASCII characters (§3.1)."""
    return random_string(32)


def new_token():
    """Return a new opaque bearer or refresh token."""
    return random_string(40)


def new_id(prefix):
    """Return a Cronofy-style identifier such as ser_..., acc_..., pro_..."""
    return f"{prefix}_{random_string(20).lower()}"


def digest(value):
    """Return the SHA-256 hex digest under which a token or code is stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def hmac_header(body, client_secrets):
    """Return the Cronofy-HMAC-SHA256 header value: one Base64 HMAC per active secret, comma-separated (§3.11)."""
    values = []
    for secret in client_secrets:
        mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        values.append(base64.b64encode(mac).decode())
    return ",".join(values)
