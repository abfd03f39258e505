"""Command-line tools: `flask --app sandbox reset`, `seed --users N --rooms M [--domain D]`, `db-init`."""

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from sandbox.clients import ensure_demo_client
from sandbox.db import create_tables, drop_tables
from sandbox.directory import ensure_domains, seed_domain
from sandbox.models import Domain


def _state():
    return current_app.extensions["sandbox"]


@click.command("reset")
@with_appcontext
def reset():
    """Empty the sandbox database (tables are recreated empty, with the demo client)."""
    state = _state()
    if state.worker is not None:
        state.worker.stop()
    drop_tables(state.engine)
    create_tables(state.engine)
    with state.Session() as db:
        ensure_demo_client(db, state.config["SANDBOX_CLIENT_ID"], state.config["SANDBOX_CLIENT_SECRET"])
        db.commit()
    click.echo("Sandbox database emptied.")


@click.command("seed")
@click.option("--users", type=click.IntRange(0, 1_000_000), default=None, help="Users per domain.")
@click.option("--rooms", type=click.IntRange(0, 100_000), default=None, help="Rooms and equipment per domain.")
@click.option("--shared", type=click.IntRange(0, 100_000), default=None, help="Shared mailboxes per domain.")
@click.option("--domain", "domain_name", default=None, help="Only this seeded domain (default: all).")
@with_appcontext
def seed(users, rooms, shared, domain_name):
    """Size the seeded domains' directories."""
    config = _state().config
    users = config["SANDBOX_SEED_USERS"] if users is None else users
    rooms = config["SANDBOX_SEED_ROOMS"] if rooms is None else rooms
    shared = max(1, users // 20) if shared is None else shared
    with _state().Session() as db:
        domains = ensure_domains(db)
        if domain_name and domain_name not in domains:
            raise click.BadParameter(f"unknown domain; choose from {', '.join(sorted(domains))}", param_hint="--domain")
        targets = [domains[domain_name]] if domain_name else list(domains.values())
        for domain in targets:
            seed_domain(db, domain, users, rooms, shared)
        db.commit()
        names = ", ".join(d.name for d in targets)
    click.echo(f"Seeded {names}: {users} users, {rooms} rooms and equipment, {shared} shared mailboxes each.")


@click.command("db-init")
@with_appcontext
def db_init():
    """Create the sandbox tables and demo data if missing (start-up does this too)."""
    with _state().Session() as db:
        count = len(db.scalars(select(Domain)).all())
    click.echo(f"Sandbox database ready ({count} domains).")


commands = (reset, seed, db_init)
