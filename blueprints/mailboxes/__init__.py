"""Mailboxes: the directory list, selection, export, mailbox pages, resource sync and imports."""

from flask import Blueprint

bp = Blueprint("mailboxes", __name__)

from blueprints.mailboxes import actions, imports, views  # noqa: E402,F401
