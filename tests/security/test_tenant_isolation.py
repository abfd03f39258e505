"""Tenant isolation: every route that takes an org-scoped id answers another organization's admin with 404.

The sweep is driven by `app.url_map`, so routes added later are covered without touching this
file; `tests/security/org_scoped.py` says how to make each kind of object the URLs point at.
"""

from __future__ import annotations

import pytest
from flask import Flask

from tests.security import org_scoped
from tests.security.org_scoped import database_snapshot, path_for, sweep_methods


def swept_rules(app: Flask) -> list:
    """Return the org-scoped rules to sweep; fail if one carries an argument nobody registered."""
    rules = org_scoped.org_scoped_rules(app)
    org_scoped.require_registered(rules)
    return [rule for rule in rules if rule.endpoint not in org_scoped.NOT_TENANT_CHECKED]


def foreign_variants(rule, ids: org_scoped.IdMaker, own, foreign) -> list[dict]:
    """Return URL values made of the foreign organization's ids, and (when the rule nests an object
    under an org) the own org_id with the foreign object's id, which must not slip through either."""
    variants = [ids.values(rule, foreign)]
    if "org_id" in rule.arguments and len(org_scoped.id_arguments(rule)) > 1:
        variants.append(ids.values(rule, foreign, org_id_of=own))
    return variants


def test_sweep_covers_the_org_scoped_routes_that_exist_today(app):
    found = {rule.endpoint for rule in swept_rules(app)}
    assert org_scoped.KNOWN_ORG_SCOPED_ENDPOINTS <= found, sorted(org_scoped.KNOWN_ORG_SCOPED_ENDPOINTS - found)


def test_another_organizations_ids_give_404_with_every_method_and_change_nothing(
    app, client, login_as, make_organization, make_org_admin
):
    own, foreign = make_organization(), make_organization()
    login_as(make_org_admin(own, password=None))
    ids, problems, tried = org_scoped.IdMaker(), [], 0
    for rule in swept_rules(app):
        for values in foreign_variants(rule, ids, own, foreign):
            path = path_for(rule, values)
            for method in sweep_methods(rule):
                before = database_snapshot()
                status = client.open(path, method=method).status_code
                tried += 1
                if status != 404:
                    problems.append(f"{method} {path} ({rule.endpoint}) answered {status}, not 404")
                elif database_snapshot() != before:
                    problems.append(f"{method} {path} ({rule.endpoint}) answered 404 but changed the database")
    assert tried >= len(org_scoped.KNOWN_ORG_SCOPED_ENDPOINTS)
    assert not problems, "\n".join(problems)


def test_the_swept_urls_are_real_for_those_allowed_to_use_them(
    app, client, login_as, make_organization, make_support_user
):
    """Control for the sweep above: its URLs do not 404 for the organization's own admin (or support
    staff in the support area), so the 404s there come from the tenant check, not from bad URLs."""
    # A support person who also manages API keys: every support page is theirs to use.
    organization, support_user = make_organization(), make_support_user(password=None, is_vendor_admin=True)
    ids, problems = org_scoped.IdMaker(), []
    for rule in swept_rules(app):
        path = path_for(rule, ids.values(rule, organization))
        org_scoped.switch_user(login_as, org_scoped.user_allowed(rule, organization, support_user))
        for method in sweep_methods(rule):
            status = client.open(path, method=method).status_code
            if status == 404:
                problems.append(f"{method} {path} ({rule.endpoint}) answered 404 to a user allowed to use it")
    assert not problems, "\n".join(problems)


def test_support_staff_get_every_organizations_pages(app, client, login_as, make_organization, make_support_user):
    foreign = make_organization()
    login_as(make_support_user(password=None, is_vendor_admin=True))
    ids, problems = org_scoped.IdMaker(), []
    for rule in swept_rules(app):
        if "GET" not in rule.methods:
            continue
        path = path_for(rule, ids.values(rule, foreign))
        status = client.get(path).status_code
        if status != 200:
            problems.append(f"GET {path} ({rule.endpoint}) answered {status} to support staff, not 200")
    assert not problems, "\n".join(problems)


def test_sweep_fails_on_an_id_argument_without_a_factory(app):
    app.add_url_rule("/orgs/<int:org_id>/gadgets/<int:gadget_id>", "gadgets.show", lambda **_: "")
    with pytest.raises(pytest.fail.Exception, match=r"gadget_id[\s\S]*Register a factory"):
        swept_rules(app)


def test_org_admin_never_reaches_the_support_area(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    for path in ("/support/", "/support/orgs/new", f"/support/orgs/{admin.organization_id}/access"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/support/orgs/{admin.organization_id}/access", data={"reason": "x" * 20}).status_code == 404
