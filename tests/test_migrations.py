"""Migrations build the schema from empty, and they match the models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from extensions import db
from models.base import render_migration_item
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL
from tests.helpers import scratch_postgres_database


@pytest.fixture
def empty_database_url(tmp_path):
    """A brand-new, empty database of the kind this test run uses."""
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    with scratch_postgres_database(TEST_DATABASE_URL, "ecc_migrations") as url:
        yield url


@pytest.fixture
def fresh_app(empty_database_url, app_config):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upgrade_from_empty_creates_every_table(fresh_app):
    upgrade()
    tables = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_migrations_match_the_models(fresh_app):
    upgrade()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_item": render_migration_item}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "models and migrations differ; run `flask db migrate`"


def test_downgrade_to_empty_and_up_again(fresh_app):
    upgrade()
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert "mailboxes" in inspect(db.engine).get_table_names()
