"""Error pages that look like the product, and JSON errors for API clients."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from blueprints import secret_paths, sessions
from blueprints.api import problems
from services.mailboxes.mailbox_import import format_size
from services.platform import outages

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Check what you entered and try again."),
    403: ("Not allowed", "Your account cannot do this. Ask an administrator of your organization."),
    404: ("Not found", "There is nothing at this address, or it is not yours to see."),
    405: ("Not allowed here", "This address does not accept that kind of request."),
    413: ("Too large", "What you sent is larger than the console accepts."),
    429: ("Too many attempts", "Too many attempts in a short time. Wait a minute and try again."),
    500: ("Something went wrong", "The console hit an unexpected error. It has been logged; please try again."),
}
UNAVAILABLE_TITLE = "Database unavailable"
UNAVAILABLE_MESSAGE = (
    "The console cannot reach its database just now. Nothing you saved was lost; this page will work again by "
    "itself once the database is back — try again in a minute."
)
RETRY_AFTER_SECONDS = 60
# The vendor's JSON API answers every error as a problem document (RFC 9457).
API_ROOT = "/api/v1"


def wants_json() -> bool:
    """Return whether the client is an API client rather than a browser."""
    if request.path.startswith(("/api/", "/callbacks/", "/healthz", "/readyz")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and not request.accept_mimetypes.accept_html


def render_error(status: int, title: str | None = None, message: str | None = None):
    """Render the error page (or JSON) for status."""
    default_title, default_message = MESSAGES.get(status, MESSAGES[500])
    title, message = title or default_title, message or default_message
    if wants_json():
        return jsonify(error=title.lower().replace(" ", "_"), message=message), status
    return render_template("errors/error.html", status=status, title=title, message=message), status


def is_api_request() -> bool:
    return request.path == API_ROOT or request.path.startswith(API_ROOT + "/")


def handle_http_exception(exc: HTTPException):
    if is_api_request():
        return problems.from_http_exception(exc)
    status = exc.code or 500
    message = None
    if status == 429:
        message = "Too many attempts in a short time. Wait a minute, then try again."
    elif status == 413:
        message = _too_large_message()
    elif exc.description and status in (400, 403, 413) and exc.description != type(exc).description:
        message = exc.description
    return render_error(status, message=message)


def _too_large_message() -> str | None:
    """Name the body-size limit that applied to this request (some routes set a smaller one).

    A body within that limit was refused by another one (a form field too large): say nothing precise.
    """
    limit, length = request.max_content_length, request.content_length
    if limit is None or (length is not None and length <= limit):
        return None
    return f"What you sent is larger than the {format_size(limit)} the console accepts in one request."


def handle_csrf_error(exc: CSRFError):
    return render_error(
        400,
        title="Form expired",
        message="This form was open too long or came from elsewhere. Go back, reload the page and submit it again.",
    )


def handle_unexpected(exc: Exception):
    # Flask hands an error raised after the view (in an after_request hook) over wrapped in a 500.
    original = getattr(exc, "original_exception", None) or exc
    if outages.database_unreachable(original):
        return handle_database_unavailable(original)
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error on %s %s", request.method, _rule())
    if is_api_request():
        return problems.problem_response("server-error")
    return render_error(500)


def _rule() -> str:
    # The rule, not the path: a path may carry a one-time secret (a reset or invitation token).
    return request.url_rule.rule if request.url_rule is not None else "(no route)"


def handle_database_unavailable(exc: Exception) -> Response:
    """Answer 503 (and when to retry) without touching the database again; the session cookie stays as it is."""
    sessions.leave_unloaded()
    log.warning("database unreachable on %s %s (%s)", request.method, _rule(), outages.reason(exc))
    if is_api_request():
        response = problems.problem_response("service-unavailable", UNAVAILABLE_MESSAGE)
    elif wants_json():
        response = jsonify(error="database_unavailable", message=UNAVAILABLE_MESSAGE)
    else:
        # Rendered without the app's context processors: the navigation's would load the user and organization.
        page = current_app.jinja_env.get_template("errors/unavailable.html")
        response = current_app.response_class(page.render(title=UNAVAILABLE_TITLE, message=UNAVAILABLE_MESSAGE),
                                              mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _give_back_session(_exc: BaseException | None) -> None:
    # Registered after Flask-SQLAlchemy, so it runs first: its own teardown would raise past every handler.
    outages.give_back_session()


def init_app(app: Flask) -> None:
    secret_paths.keep_out_of(log)
    app.teardown_appcontext(_give_back_session)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
