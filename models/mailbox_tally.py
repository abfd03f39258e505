"""Running tallies of mailboxes per status, kept by database triggers, for the list's summary bar.

Counting 100,000 mailboxes per status on every view of the list costs a scan of the whole index; the
triggers of migration `mailbox status tallies` instead append one row per change (+1 into the new
status, -1 out of the old one), so the organization-wide counts are a sum over a few rows. Appending
(never updating one counter row) keeps concurrent transactions from waiting on each other;
`services.mailboxes.mailbox_query` folds an organization's rows into one per status once they pile up.
"""

from __future__ import annotations

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db


class MailboxStatusTally(db.Model):
    """One change to an organization's number of mailboxes in one status (written by triggers only)."""

    __tablename__ = "mailbox_status_tallies"
    __table_args__ = (Index("ix_mailbox_status_tallies_org_status", "organization_id", "status", "delta"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: the rows are derived data, written by triggers as mailboxes come and go.
    organization_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    delta: Mapped[int]
