"""The failure guide: every error key the sandbox and the engine produce has a cause, a fix and a link."""

from __future__ import annotations

import pytest

from services.mailboxes import failure_guide
from services.mailboxes.failure_guide import explain
from services.onboarding.providers import PROVIDERS

# Every key, what retrying as is can do, and the checklist item per provider (None: no item matches).
EXPECTED = {
    "unable_to_grant_scope": (False, {"exchange_ews": "ews_free_busy_permission",
                                      "microsoft_graph": "graph_permissions", "google": "google_marketplace_app"}),
    "not_found": (False, {}),
    "outside_access_policy": (False, {"google": "google_restrict_ou", "microsoft_graph": "graph_access_policy",
                                      "exchange_ews": "ews_impersonation"}),
    "mailbox_suspended": (False, {}),
    "license_missing": (False, {"exchange_ews": "ews_service_account"}),
    "no_callback": (True, {"exchange_ews": "ews_network"}),
    "invalid_grant": (True, {}),
    "exchange_interrupted": (True, {}),
    "lost_authorization_revoked": (True, {}),
    "upstream_unavailable": (True, {}),
    "rate_limited": (True, {}),
    "invalid_request": (False, {}),
    "reauthorization_needed": (False, {"google": "google_marketplace_app", "microsoft_graph": "graph_global_admin",
                                       "exchange_ews": "ews_service_account"}),
    "insufficient_scope": (False, {}),
}


def test_every_known_key_is_covered_here():
    assert set(failure_guide.KNOWN_KEYS) == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED))
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_key_has_a_cause_a_fix_and_the_matching_checklist_item(key, provider):
    retryable, items = EXPECTED[key]
    guidance = explain(key, "upstream words", provider)
    assert guidance.known and guidance.retryable is retryable
    assert len(guidance.cause) > 30 and len(guidance.fix) > 20
    assert "upstream words" not in guidance.cause  # known keys speak plainly, not in the upstream's words
    if provider in items:
        item = PROVIDERS[provider].item(items[provider])
        assert guidance.checklist_url == f"/checklists/{provider}#{item.id}"
        assert guidance.checklist_label == item.text
    else:
        assert guidance.checklist_url is None and guidance.checklist_label is None


def test_unknown_key_shows_the_upstream_description_verbatim():
    guidance = explain("errors.something_new", "  The calendar server said: go away  ")
    assert not guidance.known
    assert guidance.cause == "The calendar server said: go away"
    assert guidance.checklist_url is None and guidance.retryable


def test_unknown_key_without_description_names_the_key():
    assert "weird_key" in explain("weird_key").cause
    assert explain(None).cause == "No reason was given."


@pytest.mark.parametrize(
    ("alias", "key"),
    [("code_expired", "invalid_grant"), ("errors.unknown_or_used", "invalid_grant"),
     ("too_many_requests", "rate_limited"), ("server_error", "upstream_unavailable"),
     ("gateway_timeout", "upstream_unavailable"), ("invalid_token", "reauthorization_needed")],
)
def test_other_spellings_of_a_failure_get_the_same_guidance(alias, key):
    assert explain(alias, provider="google") == explain(key, provider="google")


@pytest.mark.parametrize(("upstream", "provider"),
                         [("google", "google"), ("office365", "microsoft_graph"), ("exchange", "exchange_ews")])
def test_upstream_provider_names_find_the_same_checklist(upstream, provider):
    assert explain("outside_access_policy", provider=upstream) == explain("outside_access_policy", provider=provider)


def test_no_provider_means_no_checklist_link_but_still_guidance():
    guidance = explain("outside_access_policy")
    assert guidance.checklist_url is None and "policy" in guidance.cause


def test_every_mapped_checklist_item_exists_in_the_catalogue():
    for entry in failure_guide._GUIDE.values():
        for provider, item_id in entry.checklist.items():
            assert PROVIDERS[provider].item(item_id) is not None, (provider, item_id)
