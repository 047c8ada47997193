"""The waitress server behind `mailroom web`, with errors it writes itself in the API's shape.

Waitress refuses some requests before Django sees them: a header holding a control byte
(a NUL in `X-API-Key`), headers over its limits, a broken chunked body. It answers those in
plain text. Under /api/ clients read one JSON error shape (`{"detail": [{"field": null,
"message": "…"}]}`, see mailroom.api.errors), so requests whose path starts with /api/ get
that body instead; every other path keeps waitress's text.
"""

from __future__ import annotations

import json
from typing import Any

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

API_PREFIX = b"/api/"


def _request_path(first_line: bytes | None) -> bytes:
    parts = (first_line or b"").split()
    return parts[1] if len(parts) >= 2 else b""


class JsonErrorTask(ErrorTask):
    """Waitress's own 4xx/5xx answers, as JSON for API paths."""

    def execute(self) -> None:
        if not _request_path(getattr(self.request, "first_line", None)).startswith(API_PREFIX):
            super().execute()
            return
        error = self.request.error
        message = f"{error.reason}: {str(error.body).rstrip('.')}."
        body = json.dumps({"detail": [{"field": None, "message": message}]}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def create_web_server(application: Any, **adjustments: Any) -> Any:
    """`waitress.create_server` whose listening sockets all use JsonErrorChannel."""
    socket_map: dict = {}
    server = create_server(application, map=socket_map, **adjustments)
    for dispatcher in list(socket_map.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = JsonErrorChannel
    return server
