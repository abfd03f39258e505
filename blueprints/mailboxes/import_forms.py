"""Forms of the mailbox import: the upload (or paste) and the commit of a preview."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, RadioField, SelectField, SubmitField, TextAreaField

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
    """Committing a preview: optionally with the addresses outside the domains, or removing the leavers."""

    include_outside = BooleanField("Also import the addresses outside the domain", default=False)
    # The version of the outside rows the page showed (`mailbox_import.outside_offer`).
    outside_version = HiddenField()
    remove_leavers = BooleanField("Also revoke and remove the leavers", default=False)
    submit = SubmitField("Import")

    def validate(self, extra_validators=None) -> bool:
        """Refuse a tick on the outside addresses that does not say which version of the preview it was given on."""
        if not super().validate(extra_validators):
            return False
        if self.include_outside.data and not (self.outside_version.data or "").strip():
            self.include_outside.errors.append(
                "This page did not say which addresses outside the domain you ticked in (was it open since "
                "before an update?). Check them below and commit again."
            )
            return False
        return True


class ImportDiscardForm(FlaskForm):
    """Discarding a preview (only the CSRF token)."""

    submit = SubmitField("Discard this preview")
