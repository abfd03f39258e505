"""Keep the secrets that some URLs carry out of every log.

A request whose path matches a rule with a `<secret:...>` argument (with its own method or, for a
405, another one) gets its masked path in the WSGI environ before the app sees it: gunicorn's
access log writes that path (access_log.py), the security headers recognise such pages, and records
logged while handling it are scrubbed; an error that gets past every error handler is answered
here rather than by the server, which would log the real URI. The Werkzeug server of `flask run`
logs request lines itself; a filter on its logger masks them.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from urllib.parse import unquote, urlsplit

from flask import Flask, has_request_context, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, RequestRedirect

from access_log import MASK, MASKED_PATH_KEY, mask_query, scrub, secret_segments
from blueprints.converters import secret_arguments

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[\d;]*m")
_REQUEST_LINE = re.compile(r"(?P<start>(?:\x1b\[[\d;]*m)*[A-Z]+ )(?P<target>\S+)(?P<end>.*)", re.DOTALL)


def secrets_in(url_map: Map, path: str, method: str, *, follow: bool = True) -> list[str]:
    """Return the secret values in path if it matches a secret rule, with this method or another one."""
    try:
        rule, values = url_map.bind("localhost").match(path, method, return_rule=True)
    except MethodNotAllowed as exc:
        methods = sorted(exc.valid_methods or ())
        return secrets_in(url_map, path, methods[0], follow=False) if follow and methods else []
    except RequestRedirect as exc:
        # A path with doubled slashes is redirected to the rule it would match.
        return secrets_in(url_map, unquote(urlsplit(exc.new_url).path), method, follow=False) if follow else []
    except HTTPException:
        return []
    return [str(values[name]) for name in secret_arguments(rule)]


def mask_path(path: str, secrets: set[str]) -> str:
    """Return path with each segment that is one of secrets masked."""
    return "/".join(MASK if segment in secrets else segment for segment in path.split("/"))


class MaskSecretPaths:
    """WSGI middleware: put the masked path of a request whose URL carries a secret in its environ."""

    def __init__(self, wsgi_app, url_map: Map) -> None:
        self.wsgi_app = wsgi_app
        self.url_map = url_map

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        decoded = path.encode("latin-1", "replace").decode("utf-8", "replace")
        secrets = secrets_in(self.url_map, decoded, environ.get("REQUEST_METHOD", "GET"))
        if not secrets:
            return self.wsgi_app(environ, start_response)
        wsgi_secrets = sorted({s.encode().decode("latin-1") for s in secrets})
        environ[MASKED_PATH_KEY] = mask_path(path, set(wsgi_secrets))
        try:
            return self.wsgi_app(environ, start_response)
        except Exception:
            return _crashed(environ, start_response, wsgi_secrets)


def _crashed(environ, start_response, secrets: list[str]):
    """Answer 500 for an error that got past every error handler.

    Left to the server, it would log the request's URI with the traceback, and its access-log line
    for such a request is built from a fresh environ, without the masked path.
    """
    log.error("unhandled error past the error handlers on %s %s\n%s", environ.get("REQUEST_METHOD"),
              environ[MASKED_PATH_KEY], scrub(traceback.format_exc(), secrets))
    start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain; charset=utf-8")], sys.exc_info())
    return [b"Internal Server Error\n"]


def is_secret_request() -> bool:
    """Return whether the current request's URL carries a secret."""
    return has_request_context() and MASKED_PATH_KEY in request.environ


def _request_secrets() -> list[str]:
    if not is_secret_request():
        return []
    return secret_segments(request.environ.get("PATH_INFO", ""), request.environ[MASKED_PATH_KEY])


class SecretScrubber(logging.Filter):
    """Mask, in each record logged while handling a request, the secrets that its URL carries."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the secrets in record's message and traceback; keep the record."""
        secrets = _request_secrets()
        if secrets:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a malformed call: log what it was given
                message = f"{record.msg} {record.args!r}"
            record.msg, record.args = scrub(message, secrets), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub(record.exc_text, secrets)
            record.stack_info = scrub(record.stack_info, secrets)
        return True


class DevServerRequestLines(logging.Filter):
    """Mask secret path segments and query values in the request lines that `flask run` logs."""

    url_map: Map | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the request line in record, if it carries one; keep the record."""
        args = record.args
        is_request_line = '"%s"' in str(record.msg) and isinstance(args, tuple) and args and isinstance(args[0], str)
        if is_request_line:
            record.args = (self.mask(args[0]), *args[1:])
        return True

    def mask(self, line: str) -> str:
        """Return a request line (`GET /path?query HTTP/1.1`, maybe coloured) with its secrets masked."""
        found = _REQUEST_LINE.fullmatch(line)
        if found is None or self.url_map is None:
            return line
        target = urlsplit(found["target"])
        method = _ANSI.sub("", found["start"]).strip()
        secrets = set(secrets_in(self.url_map, unquote(target.path), method))
        path = "/".join(MASK if unquote(segment) in secrets else segment for segment in target.path.split("/"))
        query = mask_query(target.query)
        return f"{found['start']}{path}{'?' + query if query else ''}{found['end']}"


# The Werkzeug logger is one per process and `flask run` serves one app: the filter reads the last
# app's routes.
_dev_server_lines = DevServerRequestLines()


def keep_out_of(logger: logging.Logger) -> None:
    """Scrub the current request's secrets from every record logger logs (once per logger)."""
    if not any(isinstance(f, SecretScrubber) for f in logger.filters):
        logger.addFilter(SecretScrubber())


def init_app(app: Flask) -> None:
    """Mark secret requests for the access log, and mask secrets in the app's and the dev server's logs."""
    app.wsgi_app = MaskSecretPaths(app.wsgi_app, app.url_map)
    _dev_server_lines.url_map = app.url_map
    werkzeug_log = logging.getLogger("werkzeug")
    if _dev_server_lines not in werkzeug_log.filters:
        werkzeug_log.addFilter(_dev_server_lines)
    keep_out_of(app.logger)  # Flask logs the path of an error no handler took
    keep_out_of(logging.getLogger("flask-limiter"))  # it logs the key of a breached limit
