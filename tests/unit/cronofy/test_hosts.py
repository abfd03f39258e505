from __future__ import annotations

import pytest

from services.cronofy import DATA_CENTERS, upstream_for


@pytest.mark.parametrize(
    ("code", "app_url", "api_url"),
    [
        ("us", "https://app.cronofy.com", "https://api.cronofy.com"),
        ("au", "https://app-au.cronofy.com", "https://api-au.cronofy.com"),
        ("ca", "https://app-ca.cronofy.com", "https://api-ca.cronofy.com"),
        ("de", "https://app-de.cronofy.com", "https://api-de.cronofy.com"),
        ("sg", "https://app-sg.cronofy.com", "https://api-sg.cronofy.com"),
        ("uk", "https://app-uk.cronofy.com", "https://api-uk.cronofy.com"),
    ],
)
def test_each_data_center_maps_to_its_hosts(code, app_url, api_url):
    upstream = upstream_for(code, client_id="cli", client_secret="sec")
    assert (upstream.app_url, upstream.api_url) == (app_url, api_url)


def test_data_centers_have_human_labels_for_every_code():
    assert set(DATA_CENTERS) == {"us", "au", "ca", "de", "sg", "uk"}
    assert DATA_CENTERS["us"] == "United States"
    assert DATA_CENTERS["uk"] == "United Kingdom"


def test_sandbox_url_serves_both_app_and_api():
    upstream = upstream_for("uk", client_id="cli", client_secret="sec", sandbox_url="http://127.0.0.1:5001/")
    assert upstream.app_url == upstream.api_url == "http://127.0.0.1:5001"


def test_unknown_data_center_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"Unknown Cronofy data center 'eu'.*us, au, ca, de, sg, uk"):
        upstream_for("eu", client_id="cli", client_secret="sec")


def test_default_timeouts_are_explicit_and_secret_is_not_in_repr():
    upstream = upstream_for("us", client_id="cli", client_secret="sec_never_shown")
    assert upstream.timeout == (5.0, 15.0)
    assert "sec_never_shown" not in repr(upstream)
