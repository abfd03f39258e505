"""API test fixtures: keys with chosen scopes, and a client whose every answer is checked against the document."""

from __future__ import annotations

import json

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import EnvironBuilder

from blueprints.api.problems import MEDIA_TYPE
from extensions import db
from models.api_key import API_SCOPES
from services.accounts import api_keys
from services.mailboxes import mailbox_tokens


@pytest.fixture(autouse=True)
def fold_token_issuances(app):
    """Tokens handed out are counted in memory and folded into their mailboxes within a second: fold a test's
    own before its tables are emptied, so that no count lands on the next test's rows."""
    yield
    mailbox_tokens.fold_issuances()


@pytest.fixture
def make_api_key(app):
    def _make(*scopes, organization=None, name="Vendor backend"):
        issued = api_keys.create_key(name, scopes or API_SCOPES, organization=organization)
        db.session.commit()
        return issued.secret
    return _make


@pytest.fixture
def openapi(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    # Problem documents are JSON too (RFC 9457 registers application/problem+json as such).
    config = Config(extra_media_type_deserializers={MEDIA_TYPE: json.loads})
    return OpenAPI.from_dict(document, config=config)


class ApiClient:
    """The test client with a bearer key; each response is validated against the OpenAPI document."""

    def __init__(self, client, openapi, key):
        self._client, self._openapi, self.key = client, openapi, key

    def request(self, method, path, *, key=..., validate=True, headers=None, **kwargs):
        key = self.key if key is ... else key
        sent = dict(headers or {})
        if key is not None:
            sent.setdefault("Authorization", f"Bearer {key}")
        response = self._client.open(path, method=method, headers=sent, **kwargs)
        if validate:
            # The app read the request's body; the validator gets the same request built afresh.
            sent_again = EnvironBuilder(path=path, method=method, headers=sent, **kwargs).get_request()
            self._openapi.validate_response(WerkzeugOpenAPIRequest(sent_again), WerkzeugOpenAPIResponse(response))
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(client, openapi, make_api_key):
    """An ApiClient with a key holding every scope; `api.key = ...` or `key=` per call to use another."""
    return ApiClient(client, openapi, make_api_key())
