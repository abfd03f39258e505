"""Reconciliation: the leavers a full-list import found, removed only when an admin asks for it.

Leavers are never removed silently: the preview lists them, the commit form offers a tick-box (off
by default), and removal goes through `services.mailboxes.mailbox_directory.remove_mailboxes`, the same path as
removing mailboxes by hand, so authorized ones are revoked upstream first and the removal is audited.
"""

from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models.mailbox import Mailbox
from models.mailbox_import import MailboxImport, MailboxImportRow
from services.mailboxes import mailbox_directory
from services.mailboxes.mailbox_import.commit import ImportStateError


def leaver_ids(mailbox_import: MailboxImport) -> list[int]:
    """Return the ids of the import's leavers that are still in the organization's directory."""
    return list(
        db.session.scalars(
            select(Mailbox.id)
            .join(MailboxImportRow, MailboxImportRow.mailbox_id == Mailbox.id)
            .where(
                MailboxImportRow.import_id == mailbox_import.id,
                MailboxImportRow.outcome == "leaver",
                Mailbox.organization_id == mailbox_import.organization_id,
            )
            .order_by(Mailbox.id)
        )
    )


def can_remove_leavers(mailbox_import: MailboxImport) -> bool:
    """Return whether the leavers are few enough to remove in one go with the commit."""
    return 0 < mailbox_import.leaver_count <= mailbox_directory.MAX_SYNC_REMOVAL


def remove_leavers(mailbox_import: MailboxImport, *, actor) -> mailbox_directory.RemovalResult:
    """Revoke and remove the leavers of a committed full-list import, once.

    :raises ImportStateError: if the import is not a committed full list or its leavers were handled.
    :raises mailbox_directory.MailboxError: if there are more leavers than one removal takes.
    """
    if mailbox_import.mode != "full" or mailbox_import.status != "committed":
        raise ImportStateError("Only a committed full-list import has leavers to remove.")
    if mailbox_import.removed_count is not None:
        raise ImportStateError("The leavers of this import were already removed.")
    result = mailbox_directory.remove_mailboxes(
        mailbox_import.organization, leaver_ids(mailbox_import), actor=actor
    )
    mailbox_import.removed_count = result.removed
    db.session.flush()
    return result
