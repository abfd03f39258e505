"""One-time secrets in URLs reach no log: not the app's, not gunicorn's access or error log, not `flask run`'s.

A reset link read from an access log once let someone else change a support user's password. The
sweeps take the secret routes from `app.url_map` (every rule with a `<secret:...>` argument, see
tests/security/secret_links.py), use each with a real secret, and look for it in what was logged.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextlib import closing
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from flask import current_app, request
from gunicorn.config import Config
from werkzeug.test import EnvironBuilder

from access_log import AccessLogger
from blueprints import errors
from tests import factories
from tests.gunicorn_server import Gunicorn, prepare_database, served_env
from tests.private_services import free_port
from tests.security import secret_links
from tests.security.secret_links import LINKS, methods_of, path_for, secret_rules


def _leaks(text: str, tokens: list[str]) -> list[str]:
    return [token for token in tokens if token in text]


def _logged(caplog) -> str:
    """Return everything caplog captured, formatted (tracebacks included) and as raw messages."""
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)


def _broken_view(**_values):
    raise RuntimeError(f"the database went away while serving {request.url}")


def test_every_argument_named_like_a_secret_uses_the_secret_converter(app):
    assert secret_links.unconverted_secret_arguments(app) == []
    assert {rule.endpoint for rule in secret_rules(app)} >= secret_links.KNOWN_SECRET_ENDPOINTS


def test_using_every_secret_link_logs_no_secret_even_when_the_view_fails(app, client, caplog, make_organization):
    caplog.set_level(logging.DEBUG)
    organization, tokens, problems = make_organization(), [], []
    rules = secret_rules(app)
    for rule in rules:
        link = LINKS[rule.endpoint](organization)
        tokens.append(link.token)
        for method in methods_of(rule):
            response = client.open(path_for(rule, link.token), method=method, **(link.post if method == "POST" else {}))
            expected = link.accepted if method == "POST" else link.opened if "GET" in rule.methods else 405
            if response.status_code != expected:
                problems.append(f"{method} {rule.rule} answered {response.status_code}, not {expected}")
    for rule in rules:
        app.view_functions[rule.endpoint] = _broken_view
        link = LINKS[rule.endpoint](organization)
        tokens.append(link.token)
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        assert client.open(path_for(rule, link.token), method=method).status_code == 500
        assert f"unhandled error on {method} {rule.rule}" in caplog.text
    assert not problems, "\n".join(problems)
    assert _leaks(_logged(caplog), tokens) == []


@pytest.mark.config(PROPAGATE_EXCEPTIONS=False)
def test_an_error_after_the_view_logs_no_secret(app, client, caplog, make_organization):
    """Flask itself logs the path of an error it cannot hand to an error handler (here, in after_request)."""

    @app.after_request
    def fail(response):
        raise RuntimeError(f"could not finish {request.path}")

    caplog.set_level(logging.DEBUG)
    organization, tokens = make_organization(), []
    for rule in secret_rules(app):
        link = LINKS[rule.endpoint](organization)
        tokens.append(link.token)
        assert client.get(path_for(rule, link.token)).status_code == 500
    assert "Exception on /" in caplog.text
    assert _leaks(_logged(caplog), tokens) == []


def test_the_development_server_logs_no_secret(app, live_server, caplog, make_organization):
    """`make run` serves the console with Werkzeug, which logs every request line itself."""
    caplog.set_level(logging.INFO, logger="werkzeug")
    http = requests.Session()
    http.trust_env = False
    organization, tokens = make_organization(), []
    for rule in secret_rules(app):
        link = LINKS[rule.endpoint](organization)
        tokens.append(link.token)
        for method in methods_of(rule):
            http.request(method, live_server.url + path_for(rule, link.token), allow_redirects=False, timeout=10,
                         **(link.post if method == "POST" else {}))
    code, state = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    http.get(f"{live_server.url}/connect/callback?code={code}&state={state}", allow_redirects=False, timeout=10)
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "werkzeug")
    lines = re.sub(r"\x1b\[[\d;]*m", "", logged)  # the server colours lines by status
    assert _leaks(lines, [*tokens, code, state]) == []
    assert '"GET /reset-password/[secret] HTTP/1.1" 200' in lines
    assert '"GET /callbacks/delegated/[secret] HTTP/1.1" 405' in lines
    assert "/connect/callback?code=[secret]&state=[secret]" in lines


def _broken_page(*_args, **_kwargs):
    raise RuntimeError(f"the error page failed too, for {request.url}")


def test_an_error_past_every_error_handler_logs_no_secret(app, live_server, caplog, monkeypatch, make_organization):
    """When the error page itself fails, the server would log the URI: the console answers such a request itself."""
    monkeypatch.setattr(errors, "render_error", _broken_page)
    caplog.set_level(logging.INFO)
    http = requests.Session()
    http.trust_env = False
    organization, tokens = make_organization(), []
    for rule in secret_rules(app):
        app.view_functions[rule.endpoint] = _broken_view
        link = LINKS[rule.endpoint](organization)
        tokens.append(link.token)
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        response = http.request(method, live_server.url + path_for(rule, link.token), timeout=10)
        assert response.status_code == 500
    assert _leaks(_logged(caplog), tokens) == []
    assert "unhandled error past the error handlers on GET /reset-password/[secret]" in caplog.text


def _access_line(app, log_format: str, path: str, query: str = "", headers: dict | None = None) -> str:
    """Return the access-log line gunicorn's logger class writes, in log_format, for a request the app served."""
    environ = EnvironBuilder(path=path, query_string=query, headers=headers).get_environ()
    environ["RAW_URI"] = path + (f"?{query}" if query else "")
    status = []
    with closing(app.wsgi_app(environ, lambda answer, _headers, _exc_info=None: status.append(answer))) as body:
        b"".join(body)
    status = status[0]
    config = Config()
    config.set("access_log_format", log_format)
    logger = AccessLogger(config)
    response = SimpleNamespace(status=status, headers=[], sent=0)
    request_headers = [(name.upper(), value) for name, value in (headers or {}).items()]
    atoms = logger.atoms(response, request_headers, environ, timedelta(milliseconds=1))
    return log_format % logger.atoms_wrapper_class(atoms)


def test_every_field_of_gunicorns_access_log_is_masked(app, make_organization):
    """An operator may log the request line, the query string or any environ variable: none shows a secret."""
    organization = make_organization()
    log_format = '%(r)s | %(U)s | %(q)s | %({raw_uri}e)s | %({path_info}e)s | %(f)s | %({werkzeug.request}e)s'
    for rule in secret_rules(app):
        token = LINKS[rule.endpoint](organization).token
        path = path_for(rule, token)
        line = _access_line(app, log_format, path, "next=%2F", {"Referer": f"http://console.example{path}"})
        assert token not in line, line
        assert rule.rule.replace("<secret:token>", "[secret]") in line
    code = secrets.token_urlsafe(24)
    line = _access_line(app, log_format, "/connect/callback", f"code={code}&state=abc&page=2")
    assert code not in line and "code=[secret]&state=[secret]&page=2" in line
    assert _access_line(app, "%(r)s", "/orgs/7", "page=2") == "GET /orgs/7?page=2 HTTP/1.1"


# Real gunicorn --------------------------------------------------------------------------------------------


@pytest.fixture
def served_links(tmp_path):
    """A migrated SQLite file holding one real link per secret rule; return (environment, [(rule, link)])."""
    port = free_port()
    env = served_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'console.sqlite'}",
                     PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", GUNICORN_BIND=f"127.0.0.1:{port}",
                     GUNICORN_WORKERS=1, GUNICORN_THREADS=2)

    def one_link_per_secret_rule():
        organization = factories.make_organization()
        return [(rule, LINKS[rule.endpoint](organization)) for rule in secret_rules(current_app)]

    return env, env["PUBLIC_BASE_URL"], prepare_database(env, one_link_per_secret_rule)


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def _use(http: requests.Session, base_url: str, rule, link: secret_links.Link) -> list[str]:
    """Use one link the way a browser (or Cronofy) does; return what went wrong."""
    path, problems = path_for(rule, link.token), []
    for method in methods_of(rule):
        options = dict(link.post) if method == "POST" else {}
        if method == "POST" and "data" in options and isinstance(options["data"], dict):
            page_path = path.removesuffix("/connect")
            options["data"] = {**options["data"], "csrf_token": _csrf_token(http.get(base_url + page_path).text)}
        status = http.request(method, base_url + path, allow_redirects=False, timeout=30, **options).status_code
        expected = link.accepted if method == "POST" else link.opened if "GET" in rule.methods else 405
        if status != expected:
            problems.append(f"{method} {rule.rule} answered {status}, not {expected}")
    return problems


def test_real_gunicorn_logs_no_secret(served_links, tmp_path):
    env, base_url, links = served_links
    server = Gunicorn(env, tmp_path).wait_until_answering()
    try:
        problems = []
        for rule, link in links:
            http = requests.Session()
            http.trust_env = False
            problems += _use(http, base_url, rule, link)
    finally:
        server.stop()
    output = server.output()
    assert not problems, "\n".join(problems) + "\n" + output
    assert _leaks(output, [link.token for _, link in links]) == [], output
    for rule, _link in links:
        assert rule.rule.replace("<secret:token>", "[secret]") in output, output
    assert '"GET /reset-password/[secret] HTTP/1.1" 200' in output
    assert '"GET /callbacks/delegated/[secret] HTTP/1.1" 405' in output
