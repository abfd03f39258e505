"""Mailboxes and what happens to each: the directory, the list's queries and selections, the status
machine and timeline, export, revocation, per-mailbox tokens, resource sync, the failure guide, and
imports (mailbox_import/). Uses services.onboarding (the provider catalog), services.connections and
services.platform; never services.engine. Module names keep their `mailbox_` prefix so that calling code
reads `mailbox_states.transition(...)` wherever it is.
"""
