"""Pieces every domain shares, below all of them: the token cipher and key rotation, row leases, prebuilt
statements, the audit trail, tenancy (who may see which organization), the upstream client factory and
the shared rate budget, what the process knows of its dependencies (outages, readiness, the sign-in
throttle's store), and outgoing email (accounts and onboarding queue messages; jobs.mail sends them).
Uses models and services.cronofy only.
"""
