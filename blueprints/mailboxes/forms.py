"""Forms of the mailbox directory: adding one mailbox by hand."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

KIND_CHOICES = [("user", "User mailbox"), ("shared", "Shared mailbox"), ("resource", "Resource (room, equipment)")]


class AddMailboxForm(FlaskForm):
    """One mailbox: its address, name, kind, group and (optionally) the connection it belongs to."""

    email = StringField("Email address", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    kind = SelectField("Kind", choices=KIND_CHOICES, default="user")
    group_name = StringField(
        "Group", validators=[Optional(), Length(max=100)], description="Optional; used for filtering and staged rollouts."
    )
    connection_id = SelectField(
        "Connection", coerce=int, description="By default, the connection serving the address's domain."
    )
    submit = SubmitField("Add mailbox")

    def set_connections(self, connections) -> None:
        """Offer the organization's connections (0 means: pick by the address's domain)."""
        self.connection_id.choices = [(0, "Pick by domain")] + [(c.id, c.label) for c in connections]
