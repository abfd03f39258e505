"""Security headers on every response; no caching of signed-in pages or of pages reached through a secret link."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, current_app, session

from blueprints import secret_paths

CRONOFY_APP_HOSTS = "https://*.cronofy.com"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(app: Flask) -> str:
    """Return the CSP: no inline scripts or styles; forms may lead to Cronofy's consent page."""
    form_targets = ["'self'", CRONOFY_APP_HOSTS]
    if app.config.get("SANDBOX_MODE"):
        form_targets.append(_origin(app.config["SANDBOX_URL"]))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
            "form-action " + " ".join(form_targets),
        ]
    )


def keep_link_page_private(response: Response) -> None:
    """A page whose URL carries a secret is never cached and never sends that URL on as a referrer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers["Referrer-Policy"] = "no-referrer"


def set_security_headers(response: Response) -> Response:
    """Add the headers every page carries; signed-in pages and secret-link pages are never cached."""
    headers = response.headers
    if secret_paths.is_secret_request():
        keep_link_page_private(response)
    headers.setdefault("Content-Security-Policy", content_security_policy(current_app))
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    # Ask the cookie, not current_user: loading the user reads the database, which a 503 answer must not.
    if "_user_id" in session:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    app.after_request(set_security_headers)
    secret_paths.init_app(app)
