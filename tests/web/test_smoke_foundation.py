"""The skeleton answers: health probes, sign-in page, security headers, error pages."""


def test_healthz_answers_without_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["database"] == "ok"


def test_sign_in_page_has_security_headers(client):
    response = client.get("/sign-in")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_signed_in_pages_are_not_cached(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    response = client.get(f"/orgs/{admin.organization_id}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_page_renders_product_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert b"Not found" in response.data and b"Enterprise Connect Console" in response.data


def test_too_large_request_names_the_limit(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    response = client.post("/sign-in", data={"email": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "1 MiB" in response.get_data(as_text=True)
