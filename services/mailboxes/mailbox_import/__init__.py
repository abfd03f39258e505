"""Importing mailbox lists, one module a step: `encoding`, `parsing`, `normalize`, `preview`, `commit`.

Flow: `create_preview(organization, data, ...)` stores every row with its outcome (add, present,
update, problem, warning: outside the organization's domains; leavers in full-list mode); the admin
reviews it; `commit_import` applies it in one transaction (the rows outside the domains only if ticked
in), or `discard_import` drops it. Previews expire after 24 hours.
"""

from services.mailboxes.mailbox_import.commit import (
    CommitResult,
    ImportStateError,
    commit_import,
    discard_import,
    ensure_open,
    expire_if_stale,
    expire_stale_previews,
    outside_offer,
)
from services.mailboxes.mailbox_import.encoding import ImportFileError
from services.mailboxes.mailbox_import.parsing import format_size
from services.mailboxes.mailbox_import.preview import (
    PreviewFacts,
    counts_of,
    create_preview,
    import_limits,
    preview_facts,
    recent_imports,
    rows_page,
)

__all__ = [
    "CommitResult",
    "ImportFileError",
    "ImportStateError",
    "PreviewFacts",
    "commit_import",
    "counts_of",
    "create_preview",
    "discard_import",
    "ensure_open",
    "expire_if_stale",
    "expire_stale_previews",
    "format_size",
    "import_limits",
    "outside_offer",
    "preview_facts",
    "recent_imports",
    "rows_page",
]
