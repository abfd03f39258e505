"""Errors the API answers with, in the shapes the protocol documents (§4)."""


class ApiError(Exception):
    """An error response: status, JSON body (or None for an empty body) and extra headers."""

    def __init__(self, status, body=None, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def oauth_error(error, status=400, description=None):
    """Return an RFC 6749 error for /oauth/token (§3.2)."""
    body = {"error": error}
    if description:
        body["error_description"] = description
    return ApiError(status, body)


def unauthorized(description="The access token is not recognised"):
    """Return a 401 for a missing, unknown, expired or revoked bearer token."""
    return ApiError(401, {"error": "invalid_token", "error_description": description},
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def forbidden(description):
    """Return a 403: valid credentials without the needed scope."""
    return ApiError(403, {"error": "insufficient_scope", "error_description": description})


def unprocessable(errors):
    """Return a 422 with the {"errors": {field: [{key, description}]}} body."""
    return ApiError(422, {"errors": errors})


def field_error(key, description):
    """Return one entry of a 422 field's error list."""
    return {"key": f"errors.{key}", "description": description}


def not_found(description="Not found"):
    """Return a JSON 404."""
    return ApiError(404, {"error": "not_found", "error_description": description})


def locked(description):
    """Return a 423: the provider credentials behind the account no longer work (§4)."""
    return ApiError(423, {"error": "account_locked", "error_description": description})
