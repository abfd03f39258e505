"""Pages reached through a secret link are never cached and never pass the link on as a referrer.

One rule for every route with a `<secret:...>` argument (tests/security/secret_links.py), whatever
its blueprint and whatever the answer: the page itself, a bad or used link, a method it does not take.
"""

from __future__ import annotations

from tests.security.secret_links import LINKS, path_for, secret_rules

PRIVATE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


def _headers(response) -> dict:
    return {name: response.headers.get(name) for name in PRIVATE}


def test_every_secret_link_answer_is_kept_private(app, client, make_organization):
    organization, problems, statuses = make_organization(), [], set()
    for rule in secret_rules(app):
        link = LINKS[rule.endpoint](organization)
        answers = [client.get(path_for(rule, link.token)), client.get(path_for(rule, "not-a-real-link"))]
        if {"GET", "POST"} <= rule.methods and link.accepted == 302:
            client.post(path_for(rule, link.token), **link.post)
            answers.append(client.get(path_for(rule, link.token)))  # the link is used up now
        for response in answers:
            statuses.add(response.status_code)
            if _headers(response) != PRIVATE:
                problems.append(f"GET {rule.rule} answered {response.status_code} with {_headers(response)}")
    assert {200, 404, 405, 410} <= statuses
    assert not problems, "\n".join(problems)


def test_other_pages_keep_the_usual_referrer_policy(client):
    response = client.get("/sign-in")
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers.get("Cache-Control") != "no-store"
