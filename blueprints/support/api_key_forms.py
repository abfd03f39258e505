"""Forms of the vendor settings page (API keys)."""

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField, SubmitField, widgets
from wtforms.validators import DataRequired, Length

from models.api_key import API_SCOPES

SCOPE_HELP = {
    "organizations:read": "List organizations and read their state",
    "organizations:write": "Create organizations, change them, open portal links",
    "mailboxes:read": "Read mailboxes and connections",
    "mailboxes:write": "Add, change and remove mailboxes",
    "runs:write": "Start and steer authorization runs",
    "tokens:read": "Fetch fresh access tokens of authorized mailboxes",
    "events:read": "Read the event log",
    "webhooks:write": "Manage webhook endpoints and their deliveries",
}


class ApiKeyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)],
                       description="Which of your services uses it, e.g. “Scheduling back end (production)”.")
    scopes = SelectMultipleField(
        "Scopes", choices=[(scope, f"{scope} — {SCOPE_HELP[scope]}") for scope in API_SCOPES],
        validators=[DataRequired(message="Choose at least one scope.")],
        option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False))
    organization = SelectField("Organizations it can see", coerce=int, default=0,
                               description="A key restricted to one organization gets 404 for every other one.")
    submit = SubmitField("Create key")


class RevokeApiKeyForm(FlaskForm):
    submit = SubmitField("Revoke key")
