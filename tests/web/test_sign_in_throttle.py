"""Sign-in throttling per account as well as per address, both answered the same way."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from extensions import db
from models.rate_limit import RateLimitCounter
from tests.factories import DEFAULT_PASSWORD

WRONG = "not the password at all"


def _attempt(client, email, password=WRONG, address="198.51.100.1"):
    return client.post("/sign-in", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address})


def _statuses(client, emails, addresses, password=WRONG):
    return [_attempt(client, email, password, address).status_code for email, address in zip(emails, addresses)]


def _addresses(count, start=1):
    return [f"203.0.113.{n}" for n in range(start, start + count)]


@pytest.mark.config(SIGN_IN_RATE_LIMIT="100 per minute", SIGN_IN_ACCOUNT_RATE_LIMIT="3 per minute")
def test_guesses_at_one_account_from_many_addresses_are_throttled(client, make_org_admin):
    admin = make_org_admin()
    spellings = [admin.email, admin.email.upper(), f"  {admin.email}  "]
    assert _statuses(client, spellings, _addresses(3)) == [401, 401, 401]
    # Even the right password, from yet another address, waits out the window.
    assert _attempt(client, admin.email.title(), DEFAULT_PASSWORD, "203.0.113.99").status_code == 429
    other = make_org_admin()
    assert _attempt(client, other.email, DEFAULT_PASSWORD, "203.0.113.99").status_code == 302


@pytest.mark.config(SIGN_IN_RATE_LIMIT="100 per minute", SIGN_IN_ACCOUNT_RATE_LIMIT="2 per minute")
def test_unknown_and_unparsable_emails_are_throttled_like_real_ones(client, make_org_admin):
    admin = make_org_admin()
    for email, refused in ((admin.email, 401), ("nobody@customer.example", 401), ("Not An Email", 401),
                           ("x" * 300, 422)):
        typed = [email, email.upper(), email]
        assert _statuses(client, typed, _addresses(3)) == [refused, refused, 429], email


@pytest.mark.config(SIGN_IN_RATE_LIMIT="2 per minute", SIGN_IN_ACCOUNT_RATE_LIMIT="2 per minute")
def test_both_limits_give_the_same_answer(client, make_org_admin):
    admin = make_org_admin()
    _statuses(client, ["a@customer.example", "b@customer.example"], ["198.51.100.1"] * 2)
    by_address = _attempt(client, "c@customer.example", address="198.51.100.1")
    _statuses(client, [admin.email] * 2, _addresses(2))
    by_account = _attempt(client, admin.email, address="203.0.113.50")
    assert by_address.status_code == by_account.status_code == 429
    assert by_address.get_data() == by_account.get_data()
    assert dict(by_address.headers) == dict(by_account.headers)
    assert not [name for name in by_address.headers.keys() if name.lower().startswith(("x-ratelimit", "retry-after"))]
    page = by_address.get_data(as_text=True)
    assert "Too many sign-in attempts. Wait a minute, then try again." in page
    assert "address" not in page and "account" not in page


@pytest.mark.config(RATELIMIT_STORAGE_URI="ecc+db://", SIGN_IN_RATE_LIMIT="100 per minute",
                    SIGN_IN_ACCOUNT_RATE_LIMIT="1 per minute")
def test_what_was_typed_as_the_email_is_kept_in_no_counter_and_no_log(client, caplog):
    caplog.set_level(logging.INFO)
    typed = "Correct Horse Battery"  # a password typed into the email field
    assert [_attempt(client, typed).status_code for _ in range(2)] == [401, 429]
    keys = db.session.scalars(select(RateLimitCounter.key)).all()
    assert keys and not [key for key in keys if "horse" in key.lower()]
    assert "ratelimit" in caplog.text and "horse" not in caplog.text.lower()
