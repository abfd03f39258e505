"""Forms of the run pages: starting a run, filtering outcomes, confirming a bulk revoke."""

from __future__ import annotations

from dataclasses import dataclass

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, SubmitField
from wtforms.validators import InputRequired, NumberRange, Optional

from models.connection import Connection
from services.onboarding.catalog import expand_scope
from services.onboarding import catalog

FREE_BUSY = "free_busy"


@dataclass(frozen=True)
class ScopeChoice:
    """One delegated scope a run may ask for, with its words explained."""

    value: str
    label: str
    entries: list


def scope_choices(connection: Connection) -> list[ScopeChoice]:
    """Return the delegated scopes a run on this connection may ask for: all it allows, each level, free/busy."""
    granted = catalog.split(connection.granted_delegated_scope)
    everything = "Free/busy only" if granted == [FREE_BUSY] else "Everything the connection allows"
    choices = [ScopeChoice(" ".join(granted), everything, catalog.describe(granted))]
    levels = [word for word in granted if word in catalog.LEVELS]
    if len(granted) > 1:
        choices += [ScopeChoice(word, catalog.DELEGATED_SCOPES[word].label, catalog.describe(word))
                    for word in levels if word != FREE_BUSY]
    # Free/busy only (§3.4) whenever the connection's delegated scope covers it, so that mailboxes shared
    # as free/busy only can be authorized after an `unable_to_grant_scope` failure.
    if granted != [FREE_BUSY] and expand_scope(FREE_BUSY) <= expand_scope(" ".join(granted)):
        choices.append(ScopeChoice(FREE_BUSY, "Free/busy only", catalog.describe(FREE_BUSY)))
    return [choice for choice in choices if choice.value]


class StartRunForm(FlaskForm):
    connection_id = HiddenField()
    # The view fills the choices from the connection and explains an unknown value itself.
    scope = RadioField("Access to ask for on each mailbox", validate_choice=False,
                       validators=[InputRequired("Choose the access to ask for.")])
    canary_size = IntegerField(
        "Canary wave (optional)",
        validators=[Optional(), NumberRange(min=1, message="The canary wave needs at least 1 mailbox.")],
        description="Authorize this many mailboxes first and look at the outcome before doing the rest. "
        "Leave empty to do everything in one go.",
    )
    continue_mode = RadioField(
        "After the canary wave",
        choices=[("auto", "Continue automatically if it went well"), ("confirm", "Wait for me to confirm")],
        default="auto",
    )
    failure_threshold = IntegerField(
        "Pause when more than this share of a wave fails (%)",
        default=20,
        validators=[InputRequired("Give a failure threshold between 1 and 100 (percent)."),
                    NumberRange(min=1, max=100, message="Give a failure threshold between 1 and 100 (percent).")],
    )
    submit = SubmitField("Start authorizing")


class ConfirmRevokeForm(FlaskForm):
    confirm = HiddenField()
    submit = SubmitField("Revoke")
