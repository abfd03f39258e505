"""Forms of the organizations blueprint."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SubmitField
from wtforms.validators import AnyOf, DataRequired, Length


class InviteAdminForm(FlaskForm):
    email = EmailField("Email of the new admin", validators=[DataRequired(), Length(max=254)])
    submit = SubmitField("Create invitation link")


class ConfirmForm(FlaskForm):
    """The `confirm=yes` field that `_macros/widgets.html::confirm_button` sends with a destructive action."""

    confirm = HiddenField(validators=[AnyOf(["yes"])])
