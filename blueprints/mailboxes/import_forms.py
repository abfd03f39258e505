"""Forms of the mailbox import: the upload (or paste) and the commit of a preview."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, RadioField, SelectField, SubmitField, TextAreaField

MODES = [
    ("add", "Additions: add the new mailboxes and update changed names, kinds and groups"),
    ("full", "The full list: also show leavers, the mailboxes here that the list no longer names"),
]


class ImportUploadForm(FlaskForm):
    """A CSV file or a pasted list, the connection it belongs to, and whether it is the full list."""

    file = FileField("CSV file")
    pasted = TextAreaField("Or paste a list", render_kw={"rows": 6, "spellcheck": "false"})
    connection_id = SelectField("Connection", coerce=int)
    mode = RadioField("What the list is", choices=MODES, default="add")
    submit = SubmitField("Preview the import")

    def has_file(self) -> bool:
        """Return whether a file was chosen."""
        return bool(self.file.data and getattr(self.file.data, "filename", ""))

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.has_file() == bool((self.pasted.data or "").strip()):
            self.file.errors.append("Choose a CSV file or paste a list (one of the two).")
            return False
        return True


class ImportCommitForm(FlaskForm):
    """Committing a preview; in full-list mode, optionally removing the leavers too."""

    remove_leavers = BooleanField("Also revoke and remove the leavers", default=False)
    submit = SubmitField("Import")


class ImportDiscardForm(FlaskForm):
    """Discarding a preview (only the CSRF token)."""

    submit = SubmitField("Discard this preview")
