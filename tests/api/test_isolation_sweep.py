"""Every API route, swept: a key restricted to one organization gets 404 for another's ids with every method
(and changes nothing), ids beyond 64 bits give 404, and the same URLs are real for a key that may see them."""

from __future__ import annotations

from extensions import db
from models.audit import AuditEvent
from tests.security import org_scoped

# A valid body for each endpoint that takes one, so that the answer comes from the tenant check.
BODIES = {
    ("POST", "api_portal_links.PortalLinks"): {"admin_email": "probe@customer.example",
                                               "return_url": "https://app.vendor.example/x"},
    ("POST", "api_tokens.AccessTokenByEmail"): {"email": "probe@customer.example"},
    ("PATCH", "api_organizations.Organization"): {"name": "Renamed by a probe"},
    ("PUT", "api_mailboxes.OrganizationMailboxes"): {"mailboxes": [{"email": "probe@customer.example"}],
                                                     "include_outside_domains": True},
    ("POST", "api_runs.OrganizationRuns"): {"action": "authorize", "mailboxes": "all_unauthorized"},
    ("PATCH", "api_webhook_endpoints.WebhookEndpointItem"): {"description": "Changed by a probe"},
    ("POST", "api_webhook_endpoints.WebhookEndpointRedeliverFailed"): {"since": "2020-01-01T00:00:00Z"},
}


def _body(method, rule):
    return BODIES.get((method, rule.endpoint))


def api_rules(app) -> list:
    rules = [rule for rule in app.url_map.iter_rules()
             if rule.rule.startswith(org_scoped.API_PREFIX) and org_scoped.id_arguments(rule)]
    return sorted(rules, key=lambda rule: (rule.endpoint, rule.rule))


def _methods(rule) -> list[str]:
    # DELETE last, so that the other methods of a URL still find what it names.
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}, key=lambda method: (method == "DELETE", method))


def _audit_count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))


def test_the_sweep_finds_the_routes_that_exist(app):
    endpoints = {rule.endpoint for rule in api_rules(app)}
    assert {"api_organizations.Organization", "api_mailboxes.Mailbox", "api_tokens.MailboxAccessToken",
            "api_portal_links.PortalLinks", "api_connections.Connections",
            "api_webhook_endpoints.WebhookEndpointItem", "api_webhook_endpoints.WebhookDeliveryRedeliver"} <= endpoints
    org_scoped.require_registered(api_rules(app))


def test_another_organizations_ids_give_404_with_every_method(app, api, make_api_key, make_organization):
    app.config["PORTAL_RETURN_URLS"] = ["https://app.vendor.example/*"]
    # The sweep sends every method of every route at once: more than one key's default budget per second.
    app.config["API_RATE_LIMIT"] = "100000 per minute"
    mine, theirs = make_organization(), make_organization()
    key = make_api_key(organization=mine)
    ids, problems = org_scoped.IdMaker(), []
    for rule in api_rules(app):
        path = org_scoped.path_for(rule, ids.values(rule, theirs))
        for method in _methods(rule):
            before = _audit_count()
            response = api.request(method, path, key=key, json=_body(method, rule))
            if response.status_code != 404 or response.mimetype != "application/problem+json":
                problems.append(f"{method} {path} ({rule.endpoint}) answered {response.status_code}")
            if _audit_count() != before:
                problems.append(f"{method} {path} ({rule.endpoint}) changed something")
    assert not problems, "\n".join(problems)


def test_the_swept_urls_are_real_for_a_key_that_may_see_them(app, api, make_organization):
    app.config["PORTAL_RETURN_URLS"] = ["https://app.vendor.example/*"]
    organization, problems = make_organization(), []
    for rule in api_rules(app):
        # Fresh objects for each method: a DELETE must not take away what the next request needs.
        for method in _methods(rule):
            path = org_scoped.path_for(rule, org_scoped.IdMaker().values(rule, organization))
            response = api.request(method, path, json=_body(method, rule), validate=False)
            if response.status_code == 404 and response.json["type"].endswith("#not-found") \
                    and rule.endpoint != "api_tokens.AccessTokenByEmail":
                problems.append(f"{method} {path} ({rule.endpoint}) answered 404 to a key allowed to use it")
    assert not problems, "\n".join(problems)


def test_ids_beyond_64_bits_give_404(app, api, make_organization):
    organization = make_organization()
    ids, problems = org_scoped.IdMaker(), []
    for rule in api_rules(app):
        real = ids.values(rule, organization)
        for number in (2**63, 10**23):
            path = org_scoped.path_for(rule, dict.fromkeys(real, number))
            for method in _methods(rule):
                response = api.request(method, path, json=_body(method, rule), validate=False)
                if response.status_code != 404:
                    problems.append(f"{method} {path} answered {response.status_code}")
    assert not problems, "\n".join(problems)
