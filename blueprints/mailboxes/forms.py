"""Forms of the mailbox directory: adding one mailbox by hand."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

KIND_CHOICES = [("user", "User mailbox"), ("shared", "Shared mailbox"), ("resource", "Resource (room, equipment)")]


# No maxlength attribute: a browser cuts a longer paste short without a word. The server says instead.
_NO_CUT = {"maxlength": False}


def _at_most(limit: int, what: str) -> Length:
    return Length(max=limit, message=f"This {what} has %(length)d characters; at most {limit} fit. Shorten it.")


class AddMailboxForm(FlaskForm):
    """One mailbox: its address, name, kind, group and (optionally) the connection it belongs to."""

    email = StringField("Email address", validators=[DataRequired(), _at_most(320, "address")], render_kw=_NO_CUT)
    name = StringField("Name", validators=[Optional(), _at_most(200, "name")], render_kw=_NO_CUT)
    kind = SelectField("Kind", choices=KIND_CHOICES, default="user")
    group_name = StringField(
        "Group", validators=[Optional(), _at_most(100, "group")], render_kw=_NO_CUT,
        description="Optional; used for filtering and staged rollouts.",
    )
    connection_id = SelectField(
        "Connection", coerce=int, description="By default, the connection serving the address's domain."
    )
    submit = SubmitField("Add mailbox")

    def set_connections(self, connections) -> None:
        """Offer the organization's connections (0 means: pick by the address's domain)."""
        self.connection_id.choices = [(0, "Pick by domain")] + [(c.id, c.label) for c in connections]
