"""Importing mailbox lists: parse (`parsing`), normalize (`normalize`), preview (`preview`), commit (`commit`).

Flow: `create_preview(organization, data, ...)` stores every row with its outcome (add, present,
update, problem, warning; leavers in full-list mode); the admin reviews it; `commit_import` applies
it in one transaction, or `discard_import` drops it. Previews expire after 24 hours.
"""

from services.mailbox_import.commit import (
    CommitResult,
    ImportStateError,
    commit_import,
    discard_import,
    ensure_open,
    expire_if_stale,
    expire_stale_previews,
)
from services.mailbox_import.parsing import ImportFileError, format_size
from services.mailbox_import.preview import counts_of, create_preview, import_limits, recent_imports, rows_page

__all__ = [
    "CommitResult",
    "ImportFileError",
    "ImportStateError",
    "commit_import",
    "counts_of",
    "create_preview",
    "discard_import",
    "ensure_open",
    "expire_if_stale",
    "expire_stale_previews",
    "format_size",
    "import_limits",
    "recent_imports",
    "rows_page",
]
