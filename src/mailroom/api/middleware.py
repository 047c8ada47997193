"""Every answer under /api/ is JSON, including the ones Django or ninja write themselves.

Ninja's own "Method not allowed" (405), Django's 400 for a body over
DATA_UPLOAD_MAX_MEMORY_SIZE raised before a view runs, the CSRF 403, a 404 for a path no
pattern knows and the 500 page are HTML or plain text. This middleware rewrites any such
error under /api/ into the API's error shape (see errors.py), keeping the headers a client
needs (Allow, WWW-Authenticate, Retry-After). The docs page itself (/api/docs) stays HTML.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from mailroom.api.errors import error_response, too_big_message

PREFIX = "/api/"
HTML_PAGES = ("/api/docs",)
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")

MESSAGES = {
    400: "Bad request.",
    401: "Authentication required.",
    403: "Forbidden: you may not do that here.",
    404: "No such endpoint.",
    405: "This endpoint does not accept the {method} method.",
    413: "The request body is too large.",
    500: "Something went wrong on our side; the error was logged.",
}


def _is_json(response: HttpResponseBase) -> bool:
    content_type = (response.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _message(request: HttpRequest, response: HttpResponseBase) -> tuple[int, str]:
    status = response.status_code
    if status == 400 and _declared_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        # Django answered RequestDataTooBig before any API code ran
        return 413, too_big_message()
    if status == 405:
        allowed = response.get("Allow", "")
        text = MESSAGES[405].format(method=request.method)
        return status, f"{text} Use {allowed}." if allowed else text
    generic = MESSAGES.get(status) or MESSAGES[500 if status >= 500 else 400]
    return status, generic


class ApiJsonErrors:
    """Turn HTML or plain-text error answers under /api/ into `{"detail": [...]}`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        path = request.path_info
        if (response.status_code < 400 or not path.startswith(PREFIX)
                or path.startswith(HTML_PAGES) or _is_json(response)):
            return response
        status, message = _message(request, response)
        rewritten = error_response(status, message)
        for name in KEPT_HEADERS:
            if name in response:
                rewritten[name] = response[name]
        return rewritten
