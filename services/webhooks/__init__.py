"""Webhooks: the vendor's endpoints, their secrets, and delivering the event log to them (Standard Webhooks).

Above the domains it reads (accounts for organizations, platform for the event log, crypto and leases);
nothing below imports it. Endpoints and their URL guard (`endpoints`, `url_guard`); turning events into
deliveries (`dispatch`); sending them with signatures and retries (`signing`, `delivery`, with one
request in `transport`, the retry schedule in `schedule` and storing outcomes in `outcomes`); what was
sent (`delivery_log`).
"""
