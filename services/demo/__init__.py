"""The demo organization "Acme (demo data)": connected through the sandbox, mailboxes imported and synced,
one finished bulk authorization with realistic failures, one mailbox revoked.

Every step goes through the paths an admin's clicks take (the wizard's consent, the import preview and
its commit, resource sync, a bulk run the engine carries out, a revocation), so the demo shows what the
console really does. The steps are worked out from what the database already holds, so seeding again
changes nothing and a seed cut short resumes where it stopped. Works against the sandbox only (its
consent page is approved over HTTP as the domain administrator would). Uses services.engine,
services.mailboxes, services.onboarding, services.connections, services.accounts and services.platform.
"""
