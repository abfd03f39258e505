"""Ids too large for the database answer 404 (or are ignored in a query string), never 500.

SQLite cannot bind an integer beyond 2**63 - 1 (OverflowError) and PostgreSQL refuses it in a BIGINT
comparison: every `<int:...>` route and every id read from a query string or form must stop such a
number before it reaches a query.
"""

from __future__ import annotations

import re

import pytest

from tests.security import org_scoped

HUGE = (2**63, 10**23)
_INT_ARGUMENT = re.compile(r"<int(?:\([^)]*\))?:(\w+)>")


def int_rules(app) -> list:
    """Return every rule with an `<int:...>` argument, sorted by endpoint (the API's: tests/api/test_isolation_sweep.py)."""
    rules = [rule for rule in app.url_map.iter_rules()
             if _INT_ARGUMENT.search(rule.rule) and not rule.rule.startswith(org_scoped.API_PREFIX)]
    return sorted(rules, key=lambda rule: (rule.endpoint, rule.rule))


def huge_variants(rule, real: dict) -> list[dict]:
    """Return the rule's values with every int argument huge, and with each one in turn huge among real ids."""
    names = _INT_ARGUMENT.findall(rule.rule)
    variants = []
    for number in HUGE:
        variants.append({**real, **dict.fromkeys(names, number)})
        variants += [{**real, name: number} for name in names if len(names) > 1]
    return variants


def test_every_int_route_answers_404_to_an_id_beyond_64_bits(app, client, login_as, make_organization,
                                                            make_support_user):
    organization = make_organization()
    login_as(make_support_user(password=None))
    rules, ids, problems = int_rules(app), org_scoped.IdMaker(), []
    org_scoped.require_registered(rules)
    assert len(rules) >= len(org_scoped.KNOWN_ORG_SCOPED_ENDPOINTS)
    for rule in rules:
        for values in huge_variants(rule, ids.values(rule, organization)):
            path = org_scoped.path_for(rule, values)
            status = client.get(path).status_code
            allowed = {404} if "GET" in rule.methods else {404, 405}
            if status not in allowed:
                problems.append(f"GET {path} ({rule.endpoint}) answered {status}, not {' or '.join(map(str, allowed))}")
    for number in HUGE:  # the support list's page number, clamped to the last page
        if (status := client.get(f"/support/?page={number}").status_code) != 200:
            problems.append(f"GET /support/?page={number} answered {status}, not 200")
    assert not problems, "\n".join(problems)


@pytest.fixture
def admin_ids(login_as, make_org_admin):
    """An org admin signed in, and real ids of their organization's objects by argument name."""
    admin = login_as(make_org_admin(password=None))
    ids = org_scoped.IdMaker()
    organization = admin.organization
    return {name: ids.value(name, organization) for name in ("org_id", "run_id", "import_id")}


@pytest.mark.parametrize("number", HUGE)
def test_huge_ids_in_query_strings_and_forms_are_no_server_error(client, admin_ids, number):
    org, run, preview = admin_ids["org_id"], admin_ids["run_id"], admin_ids["import_id"]
    expected = {
        f"/orgs/{org}/mailboxes?selection={number}": 200,
        f"/orgs/{org}/mailboxes/export.csv?selection={number}": 200,
        f"/orgs/{org}/runs/new?selection={number}": 200,
        f"/orgs/{org}/wizard?reconnect={number}": 404,
        f"/orgs/{org}/runs/{run}?after={number}": 200,
        f"/orgs/{org}/runs?page={number}": 200,
        f"/orgs/{org}/mailboxes/imports/{preview}?page={number}": 200,
    }
    answers = {path: client.get(path).status_code for path in expected}
    form = {"selection_id": str(number), "mailbox_ids": str(number)}
    answers[f"POST /orgs/{org}/wizard"] = client.post(f"/orgs/{org}/wizard", data={"reconnect": number}).status_code
    expected[f"POST /orgs/{org}/wizard"] = 404
    for path, action in ((f"/orgs/{org}/mailboxes/selection", "remove"), (f"/orgs/{org}/runs/from-list", "authorize")):
        answers[f"POST {path}"] = client.post(path, data={**form, "action": action}).status_code
        expected[f"POST {path}"] = 302
    assert answers == expected

