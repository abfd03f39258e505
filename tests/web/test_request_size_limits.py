"""A request refused as too large (413) says which limit applied: the callback endpoint has its own."""

from __future__ import annotations

import pytest


def test_a_too_large_callback_names_the_callback_limit(client):
    body = b'{"authorization": {"code": "' + b"c" * (70 * 1024) + b'"}}'
    response = client.post("/callbacks/delegated/" + "t" * 32, data=body, content_type="application/json")
    assert response.status_code == 413
    message = response.get_json()["message"]
    assert "64 KiB" in message and "MiB" not in message


@pytest.mark.config(MAX_CONTENT_LENGTH=1024 * 1024)
def test_a_too_large_form_elsewhere_names_the_console_wide_limit(client):
    response = client.post("/sign-in", data={"email": "someone@customer.example", "password": "p" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "larger than the 1 MiB the console accepts in one request" in response.get_data(as_text=True)
