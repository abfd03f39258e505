"""The wizard's catalogue: providers, checklists, scopes, presets and the rules on combinations."""

from __future__ import annotations

import pytest

from services.onboarding import catalog
from services.onboarding.providers import EXCHANGE_EWS, GOOGLE, MICROSOFT_GRAPH

ACCOUNTS = "service_account/accounts/manage"
RESOURCES = "service_account/resources/manage"
ACCOUNTS_UNRESTRICTED = "service_account/accounts/unrestricted_access"
RESOURCES_UNRESTRICTED = "service_account/resources/unrestricted_access"


def messages(problems, field=None):
    return [p.message for p in problems if field is None or p.field == field]


def test_the_three_providers_have_the_labels_admins_recognise():
    labels = {key: p.label for key, p in catalog.PROVIDERS.items()}
    assert labels == {
        GOOGLE: "Google Workspace",
        MICROSOFT_GRAPH: "Microsoft 365 (Graph API)",
        EXCHANGE_EWS: "Exchange on-premises or Microsoft 365 via EWS",
    }


@pytest.mark.parametrize("key", [GOOGLE, MICROSOFT_GRAPH, EXCHANGE_EWS])
def test_every_checklist_item_has_a_unique_id_and_words(key):
    provider = catalog.PROVIDERS[key]
    assert len(set(provider.item_ids)) == len(provider.item_ids) >= 3
    assert all(item.text.strip() for item in provider.checklist)
    assert any(not item.optional for item in provider.checklist)


def test_google_checklist_names_the_marketplace_app_and_the_client_to_trust():
    google = catalog.PROVIDERS[GOOGLE]
    assert "Marketplace" in google.item("google_marketplace_app").text
    assert google.item("google_trust_client").command == "902414518019"


def test_graph_checklist_needs_a_global_admin_and_shows_the_access_policy_command():
    graph = catalog.PROVIDERS[MICROSOFT_GRAPH]
    assert "Global Administrator" in graph.item("graph_global_admin").text
    assert graph.item("graph_access_policy").command.startswith("New-ApplicationAccessPolicy")
    assert graph.item("graph_access_policy").optional


def test_ews_warns_about_the_microsoft_365_retirement_dates():
    notices = {n.id: n for n in catalog.PROVIDERS[EXCHANGE_EWS].notices}
    retirement = notices["ews_365_retirement"]
    assert retirement.level == "danger"
    assert "February 2025" in retirement.text and "1 October 2026" in retirement.text
    assert "ews_free_busy_only" in notices


def test_graph_warns_that_free_busy_only_is_impossible_there():
    ids = [n.id for n in catalog.PROVIDERS[MICROSOFT_GRAPH].notices]
    assert "graph_no_free_busy_only" in ids


@pytest.mark.parametrize("key", [GOOGLE, MICROSOFT_GRAPH, EXCHANGE_EWS])
def test_every_provider_warns_about_propagation_delays(key):
    assert "propagation" in [n.id for n in catalog.PROVIDERS[key].notices]


def test_known_item_ids_drops_unknown_ids_and_keeps_checklist_order():
    ids = catalog.known_item_ids(GOOGLE, ["google_trust_client", "made_up", "google_admin", "google_admin"])
    assert ids == ["google_admin", "google_trust_client"]
    assert catalog.known_item_ids("nonsense", ["google_admin"]) == []


def test_every_scope_is_explained_in_plain_words():
    every = {**catalog.SERVICE_ACCOUNT_SCOPES, **catalog.DELEGATED_SCOPES}
    assert set(catalog.SERVICE_ACCOUNT_SCOPES) == {ACCOUNTS, RESOURCES, ACCOUNTS_UNRESTRICTED, RESOURCES_UNRESTRICTED}
    assert {"read_only", "read_write", "free_busy", "free_busy_write"} <= set(catalog.DELEGATED_SCOPES)
    assert {"read_account", "list_calendars", "read_events", "create_event", "delete_event", "read_free_busy",
            "create_calendar", "change_participation_status"} <= set(catalog.DELEGATED_SCOPES)
    for scope in every.values():
        assert scope.label and len(scope.explanation) > 20
        assert scope.explanation.rstrip(".").lower() != scope.label.lower()


@pytest.mark.parametrize("preset", list(catalog.PRESETS))
def test_every_preset_is_valid_for_the_providers_it_is_offered_to(preset):
    chosen = catalog.PRESETS[preset]
    offered = [key for key in catalog.PROVIDERS if chosen in catalog.presets_for(key)]
    assert offered
    for key in offered:
        assert catalog.validate_scopes(key, chosen.scope, chosen.delegated_scope) == []


def test_free_busy_preset_is_offered_only_for_ews():
    assert [p.key for p in catalog.presets_for(EXCHANGE_EWS)].count("free_busy") == 1
    assert "free_busy" not in [p.key for p in catalog.presets_for(MICROSOFT_GRAPH)]
    assert "free_busy" not in [p.key for p in catalog.presets_for(GOOGLE)]


def test_at_least_one_service_account_scope_is_needed():
    problems = catalog.validate_scopes(GOOGLE, "", "read_write")
    assert [p.field for p in problems] == ["scope"]
    assert "at least one" in problems[0].message


def test_an_unrestricted_variant_alone_is_not_enough():
    problems = catalog.validate_scopes(GOOGLE, ACCOUNTS_UNRESTRICTED, "read_write")
    assert any("only makes sense together with people's calendars" in m for m in messages(problems, "scope"))


@pytest.mark.parametrize(
    ("scope", "ok"),
    [
        (f"{ACCOUNTS} {ACCOUNTS_UNRESTRICTED}", True),
        (f"{RESOURCES} {RESOURCES_UNRESTRICTED}", True),
        (f"{ACCOUNTS} {RESOURCES_UNRESTRICTED}", False),
        (f"{RESOURCES} {ACCOUNTS_UNRESTRICTED}", False),
    ],
)
def test_unrestricted_variants_need_their_own_base_scope(scope, ok):
    assert (catalog.validate_scopes(GOOGLE, scope, "read_write") == []) is ok


def test_the_delegated_scope_must_not_be_empty():
    problems = catalog.validate_scopes(GOOGLE, ACCOUNTS, "  ")
    assert [p.field for p in problems] == ["delegated_scope"]


def test_unknown_words_are_refused_by_name():
    problems = catalog.validate_scopes(GOOGLE, f"{ACCOUNTS} service_account/everything", "read_write sudo")
    assert "Unknown service-account scope: service_account/everything." in messages(problems, "scope")
    assert "Unknown calendar permission: sudo." in messages(problems, "delegated_scope")


@pytest.mark.parametrize("provider", [GOOGLE, MICROSOFT_GRAPH])
def test_free_busy_only_needs_ews(provider):
    problems = catalog.validate_scopes(provider, ACCOUNTS, "free_busy")
    assert len(problems) == 1 and "Exchange via EWS" in problems[0].message
    assert catalog.validate_scopes(EXCHANGE_EWS, ACCOUNTS, "free_busy") == []


def test_free_busy_next_to_wider_scopes_is_not_free_busy_only():
    assert not catalog.is_free_busy_only("free_busy read_events")
    assert catalog.is_free_busy_only("read_account read_free_busy")
    assert not catalog.is_free_busy_only("read_account")
    assert catalog.validate_scopes(MICROSOFT_GRAPH, ACCOUNTS, "free_busy read_only") == []


@pytest.mark.parametrize("extra", ["create_event", "delete_event", "create_calendar", "read_write", "write_only"])
def test_read_only_with_writing_makes_no_sense(extra):
    problems = catalog.validate_scopes(GOOGLE, ACCOUNTS, f"read_only {extra}")
    assert len(problems) == 1 and problems[0].message.startswith("Read only means the vendor changes nothing")


def test_free_busy_and_booking_applies_to_people_so_needs_the_accounts_scope():
    problems = catalog.validate_scopes(GOOGLE, RESOURCES, "free_busy_write")
    assert messages(problems) == ["Free/busy and booking applies to people's calendars: also choose people's calendars."]


def test_a_provider_must_be_chosen_before_scopes_can_be_checked():
    assert [p.field for p in catalog.validate_scopes(None, ACCOUNTS, "read_write")] == ["provider"]


def test_granular_scopes_alone_are_accepted():
    assert catalog.validate_scopes(GOOGLE, ACCOUNTS, "read_account list_calendars read_events create_event") == []


def test_advice_says_what_a_narrow_choice_leaves_out():
    assert any("rooms and equipment can be connected" in r for r in catalog.advice(RESOURCES, "read_write"))
    assert any("cannot be listed" in r for r in catalog.advice(ACCOUNTS, "read_write"))
    assert catalog.advice(f"{ACCOUNTS} {RESOURCES}", "read_write") == []


def test_normalise_keeps_known_words_once_in_catalogue_order():
    assert catalog.normalise(f"{RESOURCES} bogus {ACCOUNTS} {RESOURCES}", catalog.SERVICE_ACCOUNT_SCOPES) == (
        f"{ACCOUNTS} {RESOURCES}"
    )


@pytest.mark.parametrize(("code", "ok"), [("us", True), ("de", True), ("uk", True), ("eu", False), ("", False), (None, False)])
def test_data_centers_are_the_six_of_cronofy(code, ok):
    assert (catalog.validate_data_center(code) is None) is ok
    assert set(catalog.DATA_CENTERS) == {"us", "au", "ca", "de", "sg", "uk"}
