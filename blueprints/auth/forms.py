"""Forms of the auth blueprint; every field has a length limit."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from services.accounts.accounts import MIN_PASSWORD_LENGTH

MAX_NAME = 120
MAX_PASSWORD = 1024


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_PASSWORD)])
    submit = SubmitField("Sign in")


def _new_password_fields():
    password = PasswordField(
        "Password",
        description=f"At least {MIN_PASSWORD_LENGTH} characters.",
        validators=[DataRequired(), Length(max=MAX_PASSWORD, message=f"Keep it under {MAX_PASSWORD} characters.")],
    )
    confirm = PasswordField(
        "Confirm password",
        validators=[
            DataRequired(),
            Length(max=MAX_PASSWORD),
            EqualTo("password", message="The two passwords do not match."),
        ],
    )
    return password, confirm


class AcceptInvitationForm(FlaskForm):
    name = StringField(
        "Your name", validators=[DataRequired(), Length(max=MAX_NAME, message=f"Keep it under {MAX_NAME} characters.")]
    )
    password, confirm = _new_password_fields()
    submit = SubmitField("Create my account")


class ResetPasswordForm(FlaskForm):
    password, confirm = _new_password_fields()
    submit = SubmitField("Set my new password")
