"""Flask extensions, created unbound; `app.create_app` binds them."""

from __future__ import annotations

from authlib.integrations.flask_client import OAuth
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from models.base import Base, render_migration_item

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True, render_item=render_migration_item)
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
bootstrap = Bootstrap5()
# Email: services.platform.mail builds each connection from the MAIL_* settings at send time.
mail = Mail()
# Authlib's Flask client for the consent redirect; blueprints.onboarding.oauth registers one client per upstream.
oauth = OAuth()
