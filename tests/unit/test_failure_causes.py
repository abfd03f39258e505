"""Failures grouped by cause: each cause has a short name, says whether a retry can help, and its spellings
fold into one group; the grouping itself (fold) keeps each cause once."""

from __future__ import annotations

import pytest
from sqlalchemy import column, select

from services.mailboxes import failure_guide
from services.mailboxes.failure_guide import NO_KEY, cause_of, error_keys, explain
from services.read_models.failures import fold

# What a retry as it is can do, per cause (the "retry can help" property the panel and "Retry failed" use).
RETRY_CAN_HELP = {
    "unable_to_grant_scope": False, "not_found": False, "outside_access_policy": False,
    "mailbox_suspended": False, "license_missing": False, "invalid_request": False,
    "reauthorization_needed": False, "insufficient_scope": False,
    "no_callback": True, "invalid_grant": True, "exchange_interrupted": True,
    "lost_authorization_revoked": True, "upstream_unavailable": True, "rate_limited": True,
}


@pytest.mark.parametrize("key", sorted(failure_guide.KNOWN_KEYS))
def test_each_cause_has_a_short_name_and_says_whether_a_retry_can_help(key):
    guidance = explain(key)
    assert 3 <= len(guidance.name) <= 40 and guidance.name not in guidance.cause
    assert guidance.retryable is RETRY_CAN_HELP[key]
    assert guidance.cause_id == key and guidance.anchor == f"cause-{key}"


def test_only_the_scope_failure_suggests_another_access():
    suggested = {key: explain(key).suggested_scope for key in failure_guide.KNOWN_KEYS if explain(key).suggested_scope}
    assert suggested == {"unable_to_grant_scope": "free_busy"}


def test_other_spellings_belong_to_their_cause():
    assert cause_of("code_expired") == "invalid_grant" and cause_of("not_found") == "not_found"
    assert cause_of(None) == cause_of("") == NO_KEY
    assert set(error_keys("invalid_grant")) == {"invalid_grant", "code_expired", "errors.unknown_or_used"}
    assert error_keys("weird_new_key") == ("weird_new_key",)


def test_unfixable_keys_are_those_of_causes_a_retry_cannot_fix_with_their_spellings():
    keys = set(failure_guide.unfixable_keys())
    assert {"not_found", "mailbox_suspended", "unable_to_grant_scope", "invalid_token", "unprocessable"} <= keys
    assert not keys & {"no_callback", "invalid_grant", "code_expired", "server_error", "weird_new_key"}


def test_matches_selects_a_cause_with_its_spellings_and_no_key_as_null():
    key = column("error_key")
    assert "IN" in str(select(key).where(failure_guide.matches(key, "invalid_grant")))
    assert "IS NULL" in str(select(key).where(failure_guide.matches(key, NO_KEY)))


def test_anchors_are_valid_ids_for_any_key():
    assert failure_guide.anchor("errors.some thing/odd") == "cause-errors-some-thing-odd"


def test_fold_keeps_each_cause_once_the_largest_first():
    groups = fold([("upstream_unavailable", 3, "HTTP 503"), ("not_found", 12, "no such mailbox"),
                   ("server_error", 4, "HTTP 500"), ("weird", 1, "The server said no"), (None, 2, None)], "google")
    assert [(g.cause, g.count) for g in groups] == [("not_found", 12), ("upstream_unavailable", 7),
                                                    (NO_KEY, 2), ("weird", 1)]
    outage = groups[1]
    assert (outage.error_key, outage.message) == ("server_error", "HTTP 500")  # the larger part speaks for it
    assert groups[3].guidance.cause == "The server said no" and groups[3].retryable
