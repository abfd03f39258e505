"""Forms of the wizard; choices come from the catalogue and the services judge the values."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, RadioField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import Length, Optional

from services.onboarding import catalog
from services.onboarding.setup_links import MAX_LABEL_LENGTH


class StartForm(FlaskForm):
    reconnect = HiddenField()
    submit = SubmitField("Start")


class ProviderForm(FlaskForm):
    # The service explains an unknown value better than WTForms' "Not a valid choice".
    provider = RadioField(
        "Calendar service", choices=[(k, p.label) for k, p in catalog.PROVIDERS.items()], validate_choice=False
    )
    # No data center field: it is the organization's, chosen once when it was created (the step shows it).
    submit = SubmitField("Save and continue")


class ChecklistForm(FlaskForm):
    done = SelectMultipleField("Done", validate_choice=False)
    submit = SubmitField("Save and continue")


class ScopesForm(FlaskForm):
    scope = SelectMultipleField("The service account may", validate_choice=False)
    delegated_scope = SelectMultipleField("For each connected calendar, the vendor may", validate_choice=False)
    submit = SubmitField("Save and continue")


class PresetForm(FlaskForm):
    preset = HiddenField()


class ConnectForm(FlaskForm):
    submit = SubmitField("Connect")


class SetupLinkForm(FlaskForm):
    label = StringField(
        "Who is it for? (optional)",
        validators=[Optional(), Length(max=MAX_LABEL_LENGTH, message=f"Keep it under {MAX_LABEL_LENGTH} characters.")],
        description="A note for your own list, e.g. \"Sam, Google admin\". It is not sent anywhere.",
    )
    email = EmailField("Email it to (optional)", validators=[Optional(), Length(max=254)])
    submit = SubmitField("Create a setup link")


class ConfirmForm(FlaskForm):
    confirm = HiddenField()
