"""Application factory: a list of small `register_*` steps."""

from __future__ import annotations

import logging
from importlib import import_module

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import build_config, engine_options
from extensions import bootstrap, csrf, db, limiter, login_manager, mail, migrate, oauth

BLUEPRINTS = ("health", "auth", "organizations", "support", "connections", "onboarding", "mailboxes", "runs", "callbacks", "portal")


def create_app(overrides: dict | None = None) -> Flask:
    """Build the console application; `overrides` replace settings read from the environment."""
    app = Flask(__name__, instance_relative_config=True)
    register_config(app, overrides or {})
    register_logging(app)
    register_extensions(app)
    register_url_converters(app)
    register_blueprints(app)
    register_api(app)
    register_security(app)
    register_error_handlers(app)
    register_template_helpers(app)
    register_favicon(app)
    register_commands(app)
    return app


def register_config(app: Flask, overrides: dict) -> None:
    app.config.update(build_config(app.instance_path, overrides.get("APP_ENV")))
    app.config.update(overrides)
    if "SQLALCHEMY_ENGINE_OPTIONS" not in overrides:
        # The pool options depend on the database finally chosen (an override may change it).
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def register_logging(app: Flask) -> None:
    if not app.debug and not app.testing and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register_extensions(app: Flask) -> None:
    import models

    models.load_all()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/migrations"))
    csrf.init_app(app)
    import services.platform.throttle_store  # noqa: F401 - registers the ecc+db:// storage before the limiter looks for it
    limiter.init_app(app)
    bootstrap.init_app(app)
    oauth.init_app(app)
    mail.init_app(app)
    from jobs import mail as mail_jobs

    mail_jobs.send_after_commit(db.session)
    from services.platform import events

    events.install()
    login_manager.init_app(app)
    from blueprints import sessions

    login_manager.user_loader(sessions.load_user)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"


def register_url_converters(app: Flask) -> None:
    from blueprints import converters

    converters.init_app(app)


def register_blueprints(app: Flask) -> None:
    for name in BLUEPRINTS:
        app.register_blueprint(import_module(f"blueprints.{name}").bp)


def register_api(app: Flask) -> None:
    from blueprints import api
    from blueprints.portal import views as portal_views

    api.init_app(app)
    portal_views.init_app(app)


def register_security(app: Flask) -> None:
    from blueprints import security, sessions

    security.init_app(app)
    sessions.init_app(app)


def register_error_handlers(app: Flask) -> None:
    from blueprints import errors

    errors.init_app(app)


def register_template_helpers(app: Flask) -> None:
    from blueprints import template_helpers

    template_helpers.init_app(app)


def register_favicon(app: Flask) -> None:
    """Answer browsers that ask for /favicon.ico (every page links static/favicon.svg)."""
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.svg"))


def register_commands(app: Flask) -> None:
    import cli

    cli.init_app(app)
