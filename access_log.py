"""Gunicorn's access log without the secrets that some URLs carry (`logger_class` in gunicorn.conf.py).

When a request matches a route with a `<secret:...>` argument, the console puts its path with those
segments masked in the WSGI environ under MASKED_PATH_KEY (blueprints/secret_paths.py); the logger
writes that path wherever gunicorn would write the real one. Values of secret-bearing query
parameters (an OAuth `code`, a `state`) are masked on every request. This module imports nothing of
the console, so that gunicorn loads it without building the app.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_plus

from gunicorn import glogging

MASK = "[secret]"
MASKED_PATH_KEY = "ecc.masked_path"
SECRET_QUERY_PARAMETERS = frozenset(
    {"code", "state", "token", "secret", "access_token", "refresh_token", "client_secret", "password"}
)
# Shorter "secrets" cannot be real ones (those are 32 characters or more); scrubbing them from
# every field would only garble the line.
_MIN_SCRUBBED_LENGTH = 8


def mask_query(query: str) -> str:
    """Return query with the values of secret-bearing parameters masked, the rest as it was."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name = part.split("=", 1)[0]
        parts.append(f"{name}={MASK}" if unquote_plus(name).lower() in SECRET_QUERY_PARAMETERS else part)
    return "&".join(parts)


def secret_segments(path: str, masked_path: str) -> list[str]:
    """Return the segments of path that masked_path masks."""
    return [real for real, shown in zip(path.split("/"), masked_path.split("/")) if real != shown]


def _forms(secret: str) -> set[str]:
    """Return how a secret given as a WSGI string (its bytes as Latin-1) can appear in text."""
    raw = secret.encode("latin-1", "replace")
    return {secret, raw.decode("utf-8", "replace"), quote(raw, safe="")}


def scrub(value, secrets: list[str]):
    """Return value (as text, unless a number) with every form of each secret masked.

    Secrets are WSGI strings, as in `environ["PATH_INFO"]`.
    """
    if not secrets or value is None or isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    for secret in secrets:
        if len(secret) >= _MIN_SCRUBBED_LENGTH:
            for form in _forms(secret):
                text = text.replace(form, MASK)
    return text


class AccessLogger(glogging.Logger):
    """Gunicorn's logger, with secrets masked in the path, the request line, the query string and every other field."""

    def atoms(self, resp, req, environ, request_time):
        """Return gunicorn's log fields with secret path segments and query values masked."""
        atoms = super().atoms(resp, req, environ, request_time)
        masked_path = environ.get(MASKED_PATH_KEY)
        raw_path, _, raw_query = environ.get("RAW_URI", "").partition("?")
        path = masked_path or atoms["U"]
        query = mask_query(atoms["q"] or "")
        target = (masked_path or raw_path) + ("?" + mask_query(raw_query) if raw_query else "")
        atoms.update({"U": path, "q": query, "r": f"{atoms['m']} {target} {atoms['H']}",
                      "{raw_uri}e": target, "{path_info}e": path, "{query_string}e": query})
        if not masked_path:
            return atoms
        secrets = secret_segments(environ.get("PATH_INFO", ""), masked_path)
        return {key: scrub(value, secrets) for key, value in atoms.items()}
