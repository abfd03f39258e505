"""The flask-smorest Api that builds the OpenAPI 3.1 document from the schemas the views use.

flask-smorest would register its own JSON error handler for the whole app; the console keeps its
HTML error pages, so the handler is left out here and `blueprints.errors` answers problem
documents for every path under /api instead. Every error response in the document is a problem
document too (`ProblemSchema`), registered once per HTTP status.
"""

from __future__ import annotations

import http

import marshmallow as ma
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from blueprints.api.problems import MEDIA_TYPE, PROBLEM_TYPES, STATUS_SLUGS

API_PREFIX = "/api/v1"


class ProblemErrorSchema(ma.Schema):
    """One invalid field or parameter of a 422 answer."""

    pointer = ma.fields.String(metadata={"description": "JSON Pointer (RFC 6901) to the field in the body",
                                         "example": "#/email"})
    parameter = ma.fields.String(metadata={"description": "The query parameter or header", "example": "limit"})
    in_ = ma.fields.String(data_key="in", validate=ma.validate.OneOf(["query", "headers", "view_args"]),
                           metadata={"description": "Where `parameter` is", "example": "query"})
    detail = ma.fields.String(required=True, metadata={"example": "Not a valid email address."})


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = ma.fields.String(required=True, metadata={
        "description": "Stable URI of this kind of problem", "example": "https://console.example/api/docs/problems#not-found"})
    title = ma.fields.String(required=True, metadata={"example": "Not found"})
    status = ma.fields.Integer(required=True, metadata={"example": 404})
    detail = ma.fields.String(required=True, metadata={"example": "Nothing exists at this address."})
    instance = ma.fields.String(metadata={"example": "/api/v1/organizations/42"})
    errors = ma.fields.List(ma.fields.Nested(ProblemErrorSchema), metadata={"description": "422 only"})
    required_scope = ma.fields.String(metadata={"description": "403 only", "example": "mailboxes:read"})
    mailbox_status = ma.fields.String(metadata={"description": "The mailbox's status (token problems)",
                                                "example": "needs_attention"})


class ConsoleApi(Api):
    """flask-smorest's Api with problem documents and without an app-wide error handler."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def register_blueprint(self, blp, **options):
        """Register blp, naming its group in the document by its `tag` (Flask needs unique blueprint names)."""
        super().register_blueprint(blp, **options)
        tag = getattr(blp, "tag", None)
        if not tag:
            return
        for tag_entry in self.spec._tags:  # apispec keeps tags and paths as built; no public rename exists
            if tag_entry["name"] == blp.name:
                tag_entry["name"] = tag
        for path_item in self.spec._paths.values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "tags" in operation:
                    operation["tags"] = [tag if name == blp.name else name for name in operation["tags"]]

    def _register_error_handlers(self):
        """The console's own handlers answer errors (problem documents under /api, pages elsewhere)."""

    def _register_responses(self):
        for status in http.HTTPStatus:
            if status < 400:
                continue
            slug = STATUS_SLUGS.get(status)
            kind = PROBLEM_TYPES.get(slug) if slug else None
            response = {"description": kind.title if kind else status.phrase, "schema": self.ERROR_SCHEMA}
            if kind:
                response["example"] = {"type": f"https://console.example/api/docs/problems#{slug}",
                                       "title": kind.title, "status": int(status), "detail": kind.explanation}
            prepare_response(response, self.spec, MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)


SPEC_KWARGS = {
    "info": {"description": (
        "The vendor's back end for onboarding: organizations, portal links, connections, mailboxes, runs and "
        "fresh access tokens. Every request carries `Authorization: Bearer <API key>`; errors are RFC 9457 "
        "problem documents.")},
}
