"""The OpenAPI document is valid OpenAPI 3.1, complete, and its docs page is served without a CDN."""

from __future__ import annotations

from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator


def test_the_document_is_valid_openapi_3_1(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_every_operation_documents_its_security_errors_and_examples(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API key: `ecc_live_…`"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            where = f"{method.upper()} {path}"
            assert operation["security"][0]["bearerAuth"], where
            assert {"401", "403", "429"} <= set(operation["responses"]), where
            assert operation.get("summary"), where
    problem = document["components"]["responses"]["NOT_FOUND"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert problem["example"]["status"] == 404
    created = document["paths"]["/api/v1/organizations"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["example"]["id"] == "42"


def test_the_reference_page_serves_swagger_ui_from_the_console(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/v1/openapi.json" in html
    assert "https://" not in html and "http://" not in html.replace("http://localhost", "")
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        with client.get(f"/api/docs/assets/{asset}") as served:
            assert served.status_code == 200 and len(served.data) > 10_000, asset
    assert client.get("/api/docs/assets/index.html").status_code == 404


def test_the_problems_page_names_every_type(client):
    page = client.get("/api/docs/problems").get_data(as_text=True)
    for slug in ("unauthenticated", "insufficient-scope", "not-found", "validation-failed", "rate-limited",
                 "idempotency-key-reused", "invalid-cursor", "conflict"):
        assert f'id="{slug}"' in page
