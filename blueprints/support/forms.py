"""Forms of the support area."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from services.accounts.organizations import data_center_choices
from services.accounts.support import MAX_REASON_LENGTH, MIN_REASON_LENGTH


class NewOrganizationForm(FlaskForm):
    name = StringField("Organization name", validators=[DataRequired(), Length(max=120)])
    data_center = SelectField(
        "Cronofy data center",
        choices=data_center_choices(),
        description="Where the organization's Cronofy data lives. Chosen once, now: it cannot be changed later, in "
        "the connection wizard or anywhere else. Every connection of the organization uses it; its admins see it "
        "in the wizard.",
    )
    admin_email = EmailField("Email of the first admin", validators=[DataRequired(), Length(max=254)])
    submit = SubmitField("Create organization and invitation")


class SupportAccessForm(FlaskForm):
    reason = TextAreaField(
        "Why do you need to act on this organization's behalf?",
        validators=[DataRequired(), Length(min=MIN_REASON_LENGTH, max=MAX_REASON_LENGTH)],
        description="Recorded in the audit log with everything you change, and shown to the organization's admins.",
        render_kw={"rows": 3, "maxlength": MAX_REASON_LENGTH},
    )
    next = HiddenField()
    submit = SubmitField("Start acting on their behalf")
