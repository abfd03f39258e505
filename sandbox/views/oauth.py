"""POST /oauth/token (§3.2, §3.3.2, §3.6) and POST /oauth/token/revoke (§3.7.1)."""

from flask import Blueprint, jsonify

from sandbox import clients, tokens
from sandbox.db import session
from sandbox.errors import oauth_error
from sandbox.views.common import body, no_store, state

bp = Blueprint("sandbox_oauth", __name__)


def _text(data, name, required=True):
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise oauth_error("invalid_request", description=f"{name} is required")
        return None
    if not isinstance(value, str):
        raise oauth_error("invalid_request", description=f"{name} must be a string")
    return value


def _authenticated_client(db, data):
    if not isinstance(data, dict):
        raise oauth_error("invalid_request", description="The body must be an object")
    return clients.authenticate(db, data.get("client_id"), data.get("client_secret"))


@bp.post("/oauth/token")
def token():
    """Exchange a code or a refresh token for tokens."""
    db, data = session(), body()
    client = _authenticated_client(db, data)
    grant_type = _text(data, "grant_type")
    limits = state().settings.get("limits")
    if grant_type == "authorization_code":
        result = tokens.exchange_code(db, client, _text(data, "code"), _text(data, "redirect_uri"), limits)
    elif grant_type == "refresh_token":
        rotate = state().config["SANDBOX_ROTATE_REFRESH_TOKENS"]
        result = tokens.refresh(db, client, _text(data, "refresh_token"), limits, rotate)
    else:
        raise oauth_error("unsupported_grant_type")
    db.commit()
    return no_store(jsonify(result))


@bp.post("/oauth/token/revoke")
def revoke():
    """Revoke an authorization by token or sub; always 200 with an empty body."""
    db, data = session(), body()
    client = _authenticated_client(db, data)
    token_value, sub = _text(data, "token", required=False), _text(data, "sub", required=False)
    if not token_value and not sub:
        raise oauth_error("invalid_request", description="token or sub is required")
    tokens.revoke(db, client, token=token_value, sub=sub, cascade=state().config["SANDBOX_SA_REVOKE_CASCADES"])
    db.commit()
    return "", 200
