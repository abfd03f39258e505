"""Browsers find the console's icon: every page links it, and /favicon.ico answers (no 404 per page)."""

from __future__ import annotations


def test_every_page_links_the_svg_icon_and_it_is_served(client):
    page = client.get("/sign-in").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data


def test_browsers_that_ask_for_favicon_ico_get_the_icon(client):
    with client.get("/favicon.ico") as response:  # asked without a session, on any page
        assert response.status_code == 200
        assert response.mimetype == "image/svg+xml" and b"<svg" in response.data
