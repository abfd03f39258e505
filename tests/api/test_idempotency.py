"""Idempotency-Key on creating POSTs: a retry gets the first answer; another body with the same key is refused."""

from __future__ import annotations

from extensions import db
from models.organization import Organization


def _count():
    return db.session.scalar(db.select(db.func.count()).select_from(Organization))


def test_a_retry_with_the_same_key_and_body_gets_the_first_answer(api):
    headers = {"Idempotency-Key": "7b1c1f0e"}
    first = api.post("/api/v1/organizations", json={"name": "Acme"}, headers=headers)
    again = api.post("/api/v1/organizations", json={"name": "Acme"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count() == 1


def test_the_same_key_with_another_body_is_refused(api):
    headers = {"Idempotency-Key": "k-1"}
    api.post("/api/v1/organizations", json={"name": "Acme"}, headers=headers)
    other = api.post("/api/v1/organizations", json={"name": "Globex"}, headers=headers)
    assert other.status_code == 422 and other.json["type"].endswith("#idempotency-key-reused")
    assert _count() == 1


def test_keys_are_per_api_key_and_failed_validation_is_not_remembered(api, make_api_key):
    headers = {"Idempotency-Key": "shared"}
    assert api.post("/api/v1/organizations", json={"name": "A"}, headers=headers).status_code == 201
    assert api.post("/api/v1/organizations", json={"name": "A"}, headers=headers, key=make_api_key()).status_code == 201
    assert _count() == 2
    bad = {"Idempotency-Key": "bad-first"}
    assert api.post("/api/v1/organizations", json={"name": ""}, headers=bad).status_code == 422
    assert api.post("/api/v1/organizations", json={"name": "Fixed"}, headers=bad).status_code == 201


def test_a_conflict_is_replayed_too(api):
    api.post("/api/v1/organizations", json={"name": "A", "external_id": "x"})
    headers = {"Idempotency-Key": "dup"}
    first = api.post("/api/v1/organizations", json={"name": "B", "external_id": "x"}, headers=headers)
    again = api.post("/api/v1/organizations", json={"name": "B", "external_id": "x"}, headers=headers)
    assert first.status_code == again.status_code == 409
    assert again.mimetype == "application/problem+json" and again.json == first.json


def test_an_over_long_key_is_refused(api):
    response = api.post("/api/v1/organizations", json={"name": "A"}, headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 422 and _count() == 0
