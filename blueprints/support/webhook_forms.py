"""Forms of the vendor settings' webhooks pages: an endpoint, confirmations, and redelivering failures."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, SelectField, SelectMultipleField, StringField, SubmitField, widgets
from wtforms.validators import DataRequired, Length

from services.platform.event_types import CATALOG
from services.webhooks.endpoints import MAX_DESCRIPTION_LENGTH
from services.webhooks.url_guard import MAX_URL_LENGTH


class WebhookEndpointForm(FlaskForm):
    url = StringField("URL", validators=[DataRequired(message="Enter the URL that should receive the webhooks."),
                                         Length(max=MAX_URL_LENGTH)],
                      description="Your service's address for events, e.g. https://hooks.example.com/calendar-console. "
                                  "It must be reachable on the public internet.")
    description = StringField("Description", validators=[Length(max=MAX_DESCRIPTION_LENGTH)],
                              description="Optional: which of your services this is.")
    event_types = SelectMultipleField(
        "Event types", choices=[(t.name, f"{t.name} — {t.description}") for t in CATALOG],
        option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False),
        description="Leave every box empty to receive every type, including types added later.")
    organization = SelectField("Organization", coerce=int, default=0,
                               description="Only this organization's events, or every organization's.")
    enabled = BooleanField("Enabled", default=True)
    submit = SubmitField("Save endpoint")


class ConfirmForm(FlaskForm):
    """A confirmation (rotate the secret, delete) or a plain action button: only its CSRF token matters."""

    submit = SubmitField("Confirm")


class RedeliverFailedForm(FlaskForm):
    since = DateTimeLocalField("Failed since (UTC)", format="%Y-%m-%dT%H:%M",
                               validators=[DataRequired(message="Give the time (UTC) to redeliver failures from.")])
    submit = SubmitField("Redeliver all failed")
