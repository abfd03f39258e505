"""Every rule of the console, as plain functions grouped by domain (docs/architecture.md, "Services, by
domain"): platform below everything, then accounts, connections, onboarding, mailboxes, engine and the
read-models on top; services.cronofy is the upstream client. Services flush; their callers commit.
"""
