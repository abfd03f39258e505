"""UserInfo, resources and delegated-access requests against the loopback stub."""

from __future__ import annotations

import pytest

from services.cronofy import DelegatedRequest, ForbiddenError, InvalidRequestError, UnavailableError

SA_TOKEN = "sa_at_BEARER_1234"


def _items(n: int) -> list[DelegatedRequest]:
    return [
        DelegatedRequest(f"user{i}@customer.example", f"https://console.example/cb?mbx={i}", "read_write", f"mbx-{i}")
        for i in range(n)
    ]


def test_userinfo_of_a_service_account_nested_shape(cronofy, stub):
    stub.reply(200, {
        "sub": "ser_65f0",
        "cronofy.type": "service_account",
        "email": "svc@customer.example",
        "cronofy.data": {
            "service_account": {"provider_name": "exchange", "domain": "customer.example"},
            "authorization": {"scope": "service_account/accounts/manage", "delegated_scope": "read_write", "status": "active"},
        },
    })
    info = cronofy.userinfo(SA_TOKEN)
    sent = stub.seen[0]
    assert (sent.method, sent.path, sent.headers["Authorization"]) == ("GET", "/v1/userinfo", f"Bearer {SA_TOKEN}")
    assert (info.sub, info.type, info.email) == ("ser_65f0", "service_account", "svc@customer.example")
    assert (info.domain, info.provider_name) == ("customer.example", "exchange")
    assert (info.scope, info.delegated_scope, info.status) == ("service_account/accounts/manage", "read_write", "active")


def test_userinfo_of_a_service_account_flat_shape(cronofy, stub):
    # §3.8: older responses carry flat dotted keys at the top level.
    stub.reply(200, {
        "sub": "ser_1",
        "cronofy.type": "service_account",
        "cronofy.service_account.domain": "flat.example",
        "cronofy.service_account.email": "svc@flat.example",
    })
    info = cronofy.userinfo(SA_TOKEN)
    assert (info.domain, info.email, info.type) == ("flat.example", "svc@flat.example", "service_account")
    assert info.status is None and info.profiles == ()


def test_userinfo_of_an_account_lists_its_profiles(cronofy, stub):
    stub.reply(200, {
        "sub": "acc_1", "email": "alice@customer.example", "name": "Alice", "cronofy.type": "account",
        "cronofy.data": {
            "authorization": {"scope": "read_write", "status": "active"},
            "profiles": [
                {"provider_name": "office365", "provider_service": "office365", "profile_id": "pro_1",
                 "profile_name": "alice@customer.example", "profile_connected": False,
                 "profile_initial_sync_required": True, "profile_relink_url": "https://relink.example",
                 "provider_protocol": "graph_api"},
                "not-a-profile",
            ],
        },
    })
    info = cronofy.userinfo("acc_at_x")
    assert (info.type, info.name, info.status) == ("account", "Alice", "active")
    [profile] = info.profiles
    assert (profile.profile_id, profile.provider_name, profile.provider_protocol) == ("pro_1", "office365", "graph_api")
    assert profile.profile_connected is False and profile.profile_initial_sync_required is True
    assert profile.profile_relink_url == "https://relink.example"


def test_list_resources_flattens_location_and_asks_for_details(cronofy, stub):
    stub.reply(200, {"resources": [
        {"email": "room.atlas@customer.example", "name": "Atlas", "capacity": 8, "location": {
            "building_name": "HQ", "floor_name": "3", "floor_section": "East",
            "address": {"lines": ["1 Example Way"], "locality": "Berlin", "region": "BE",
                        "postal_code": "10115", "country": "DE"},
            "coordinates": {"lat": 52.53, "long": 13.38}}},
        {"email": "projector-2@customer.example", "name": "Projector 2"},
        {"name": "no email, unusable"},
    ]})
    atlas, projector = cronofy.list_resources(SA_TOKEN)
    sent = stub.seen[0]
    assert sent.path == "/v1/resources" and sent.query == {"include_details": ["capacity location"]}
    assert sent.headers["Authorization"] == f"Bearer {SA_TOKEN}"
    assert (atlas.capacity, atlas.building_name, atlas.floor_name, atlas.floor_section) == (8, "HQ", "3", "East")
    assert (atlas.address_lines, atlas.locality, atlas.country) == (("1 Example Way",), "Berlin", "DE")
    assert (atlas.latitude, atlas.longitude) == (52.53, 13.38)
    assert (projector.email, projector.capacity, projector.building_name) == ("projector-2@customer.example", None, None)


def test_list_resources_without_details_sends_no_query(cronofy, stub):
    stub.reply(200, {"resources": []})
    assert cronofy.list_resources(SA_TOKEN, include_details=()) == []
    assert stub.seen[0].query == {}


def test_list_resources_lacking_the_list_is_malformed(cronofy, stub):
    stub.reply(200, {"unexpected": True})
    with pytest.raises(UnavailableError, match="resources"):
        cronofy.list_resources(SA_TOKEN)


def test_list_resources_forbidden_without_the_resources_scope(cronofy, stub):
    stub.reply(403)
    with pytest.raises(ForbiddenError):
        cronofy.list_resources(SA_TOKEN)


def test_one_delegated_request_uses_the_single_body(cronofy, stub):
    stub.reply(202)
    cronofy.request_delegated_access(SA_TOKEN, _items(1))
    sent = stub.seen[0]
    assert (sent.method, sent.path) == ("POST", "/v1/service_account_authorizations")
    assert sent.headers["Authorization"] == f"Bearer {SA_TOKEN}"
    assert sent.headers["Content-Type"].startswith("application/json")
    assert sent.json() == {
        "email": "user0@customer.example", "callback_url": "https://console.example/cb?mbx=0",
        "scope": "read_write", "state": "mbx-0",
    }


def test_a_delegated_request_without_state_omits_it(cronofy, stub):
    stub.reply(202)
    cronofy.request_delegated_access(SA_TOKEN, [DelegatedRequest("a@x.example", "https://cb.example", "free_busy")])
    assert "state" not in stub.seen[0].json()


def test_fifty_delegated_requests_use_one_collection_body(cronofy, stub):
    stub.reply(202)
    cronofy.request_delegated_access(SA_TOKEN, _items(50))
    [sent] = stub.seen
    entries = sent.json()["service_account_authorizations"]
    assert len(entries) == 50 and list(sent.json()) == ["service_account_authorizations"]
    assert entries[49] == {"email": "user49@customer.example", "callback_url": "https://console.example/cb?mbx=49",
                           "scope": "read_write", "state": "mbx-49"}


@pytest.mark.parametrize("count", [0, 51])
def test_delegated_batches_outside_1_to_50_are_refused_locally(cronofy, stub, count):
    with pytest.raises(ValueError, match="1 to 50"):
        cronofy.request_delegated_access(SA_TOKEN, _items(count))
    assert stub.seen == []


def test_delegated_422_carries_the_errors(cronofy, stub):
    errors = {"scope": [{"key": "errors.not_within_delegated_scope", "description": "not within delegated scope"}]}
    stub.reply(422, {"errors": errors})
    with pytest.raises(InvalidRequestError) as caught:
        cronofy.request_delegated_access(SA_TOKEN, _items(2))
    assert caught.value.status == 422
    assert caught.value.errors == errors
    assert caught.value.error_key == "errors.not_within_delegated_scope"
    assert caught.value.description == "scope: not within delegated scope"


def test_delegated_request_is_not_retried_after_a_timeout(make_client, stub, sleeps):
    cronofy = make_client(read_timeout=0.2)
    stub.reply(202, delay=1.0)
    with pytest.raises(UnavailableError, match="timed out"):
        cronofy.request_delegated_access(SA_TOKEN, _items(3))
    assert len(stub.seen) == 1 and sleeps.delays == []
