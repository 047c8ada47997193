"""One error shape for every failure the API reports.

Every 4xx body is ``{"detail": [{"field": <name or null>, "message": <plain words>}]}``:
clients read one structure whether the failure came from pydantic, a model's `full_clean`,
a permission check or the database. Nothing a client sends should surface as a 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import (
    ObjectDoesNotExist,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from mailroom.api.fields import check_line

if TYPE_CHECKING:
    from ninja import NinjaAPI

NON_FIELD = None


class ErrorItem(Schema):
    field: str | None
    message: str


class ErrorOut(Schema):
    detail: list[ErrorItem]


class ApiError(Exception):
    """Raised by API code for a failure that names a field (or none)."""

    def __init__(self, status: int, message: str, field: str | None = NON_FIELD) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def field_error(field: str, message: str) -> ApiError:
    return ApiError(422, message, field)


class FieldErrors(Exception):
    """Several 422 problems at once, already named in API terms."""

    def __init__(self, items: list[tuple[str | None, str]]) -> None:
        super().__init__(items)
        self.items = items


def _body(items: list[tuple[str | None, str]]) -> dict[str, Any]:
    return {"detail": [{"field": field, "message": message} for field, message in items]}


def error_response(status: int, message: str, field: str | None = NON_FIELD) -> JsonResponse:
    """The error shape outside ninja (URL fallbacks, middleware): same body, same type."""
    return JsonResponse(_body([(field, message)]), status=status)


def too_big_message() -> str:
    return (f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
            "bytes this endpoint accepts.")


def _pydantic_message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "Invalid value."))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message


def _pydantic_field(loc: tuple | list) -> str:
    """("body", "payload", "lines", 0, "quantity") -> "lines.0.quantity"; ("query", "limit")
    -> "limit". The request part itself ("body") is named when nothing inside it is."""
    parts = list(loc)
    source = str(parts.pop(0)) if parts else "body"
    if source == "body" and parts:
        parts.pop(0)  # the view's parameter name, meaningless to clients
    return ".".join(str(p) for p in parts) or source


def django_errors(exc: DjangoValidationError, rename: dict[str, str] | None = None
                  ) -> list[tuple[str | None, str]]:
    """Flatten a Django ValidationError; `rename` maps model names to API names
    ("partner" -> "partner_id")."""
    rename = rename or {}
    items: list[tuple[str | None, str]] = []
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            field = NON_FIELD if name == "__all__" else rename.get(name, name)
            items.extend((field, str(m)) for m in messages)
    else:
        items.extend((NON_FIELD, str(m)) for m in exc.messages)
    return items or [(NON_FIELD, "Invalid input.")]


def install(api: NinjaAPI) -> None:
    def respond(request: HttpRequest, status: int, items: list[tuple[str | None, str]]
                ) -> HttpResponse:
        return api.create_response(request, _body(items), status=status)

    def on_api_error(request, exc: ApiError):
        return respond(request, exc.status, [(exc.field, exc.message)])

    def on_field_errors(request, exc: FieldErrors):
        return respond(request, 422, exc.items)

    def on_ninja_validation(request, exc: NinjaValidationError):
        items = [(_pydantic_field(e.get("loc", ())), _pydantic_message(e)) for e in exc.errors]
        return respond(request, 422, items or [(NON_FIELD, "Invalid input.")])

    def on_authentication(request, exc: AuthenticationError):
        response = respond(request, 401, [(
            NON_FIELD,
            "Authentication required: send 'Authorization: Bearer mr_…' or 'X-API-Key: mr_…'.",
        )])
        response["WWW-Authenticate"] = 'Bearer realm="mailroom"'
        return response

    def on_http_error(request, exc: HttpError):
        field = "body" if exc.status_code == 400 else NON_FIELD
        return respond(request, exc.status_code, [(field, str(exc))])

    def on_django_validation(request, exc: DjangoValidationError):
        return respond(request, 422, django_errors(exc))

    def on_permission(request, exc: PermissionDenied):
        return respond(request, 403, [(NON_FIELD, str(exc) or "You may not do that.")])

    def on_not_found(request, exc: Exception):
        return respond(request, 404, [(NON_FIELD, "Not found.")])

    def on_protected(request, exc: Exception):
        return respond(request, 409, [(
            NON_FIELD, "Other records still refer to this one; change or delete them first.",
        )])

    def on_integrity(request, exc: IntegrityError):
        return respond(request, 409, [(NON_FIELD, "This conflicts with existing data.")])

    def on_data_error(request, exc: DataError):
        return respond(request, 422, [(
            NON_FIELD, "A value is out of range or too long for the database.",
        )])

    def on_too_big(request, exc: RequestDataTooBig):
        return respond(request, 413, [("body", too_big_message())])

    def on_bad_request(request, exc: Exception):
        # a malformed form body, too many fields, a broken upload: the client's fault
        return respond(request, 400, [("body", "The request body could not be read: "
                                               f"{exc or 'malformed request'}.")])

    api.add_exception_handler(ApiError, on_api_error)
    api.add_exception_handler(FieldErrors, on_field_errors)
    api.add_exception_handler(NinjaValidationError, on_ninja_validation)
    api.add_exception_handler(AuthenticationError, on_authentication)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(DjangoValidationError, on_django_validation)
    api.add_exception_handler(PermissionDenied, on_permission)
    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(ObjectDoesNotExist, on_not_found)
    api.add_exception_handler(ProtectedError, on_protected)
    api.add_exception_handler(RestrictedError, on_protected)
    api.add_exception_handler(IntegrityError, on_integrity)
    api.add_exception_handler(DataError, on_data_error)
    api.add_exception_handler(RequestDataTooBig, on_too_big)
    api.add_exception_handler(SuspiciousOperation, on_bad_request)
    api.add_exception_handler(MultiPartParserError, on_bad_request)
    api.add_exception_handler(UnreadablePostError, on_bad_request)


def idempotency_key_from(body: str | None, header: str | None) -> str | None:
    """The request's idempotency key: the body field or the `Idempotency-Key` header (they
    must agree when both are sent)."""
    header = (header or "").strip() or None
    if body and header and body != header:
        raise field_error("idempotency_key",
                          "The Idempotency-Key header and idempotency_key differ.")
    if header is not None:
        try:
            check_line(header)
        except ValueError as exc:
            raise field_error("Idempotency-Key", str(exc)) from None
    return body or header
