"""A fake OAuth 2 token endpoint on loopback, speaking the wire protocol Google and Microsoft
document for refreshing (RFC 6749 §6 and §5): a form-encoded POST in, JSON out, errors as
HTTP 400/401 with {"error", "error_description"}.

It is strict where the real ones are: wrong content type, unknown grant type, bad client
credentials and unknown (or already used, when rotating) refresh tokens are refused. Paths:
/google/token and /microsoft/token (Microsoft always rotates the refresh token and wants the
SMTP.Send scope).
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MICROSOFT_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"


@dataclass
class FakeTokenEndpoint:
    client_id: str = "client-123"
    client_secret: str = "secret-456"
    expires_in: int = 3599
    # refresh tokens the endpoint accepts; a rotating refresh retires the one used
    valid_refresh_tokens: set[str] = field(default_factory=lambda: {"rt-0"})
    rotate_google: bool = False
    # Strict one-time refresh tokens (stricter than Microsoft, whose old token stays valid
    # for a while after rotation); False keeps the used token valid too.
    retire_used: bool = True
    # set to an HTTP status to answer every request with a server error
    fail_with: int | None = None
    requests: list[dict] = field(default_factory=list)
    issued_access_tokens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---

    def start(self) -> FakeTokenEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                endpoint._handle(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def urls(self) -> dict[str, str]:
        return {"google": f"{self.base_url}/google/token",
                "microsoft": f"{self.base_url}/microsoft/token"}

    # --- the protocol ---

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode("ascii", "replace")
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True,
                                               strict_parsing=True))
        except ValueError:
            form = {}
        provider = request.path.strip("/").split("/")[0]
        self.requests.append({"path": request.path, "content_type": content_type,
                              "form": form})
        status, body = self._decide(provider, content_type, form)
        payload = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Cache-Control", "no-store")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _decide(self, provider: str, content_type: str, form: dict[str, str]
                ) -> tuple[int, dict]:
        if self.fail_with:
            return self.fail_with, {"error": "temporarily_unavailable"}
        if provider not in ("google", "microsoft"):
            return 404, {"error": "not_found"}
        if content_type != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request",
                         "error_description": "Expected a form-encoded body."}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        if (form.get("client_id"), form.get("client_secret")) != (
                self.client_id, self.client_secret):
            return 401, {"error": "invalid_client",
                         "error_description": "The OAuth client was not found."}
        if provider == "microsoft" and form.get("scope") != MICROSOFT_SCOPE:
            return 400, {"error": "invalid_scope"}
        rotate = provider == "microsoft" or self.rotate_google
        with self._lock:
            used = form.get("refresh_token", "")
            if used not in self.valid_refresh_tokens:
                return 400, {"error": "invalid_grant",
                             "error_description": "Token has been expired or revoked."}
            n = next(self._serial)
            body = {"access_token": f"at-{n}", "expires_in": self.expires_in,
                    "token_type": "Bearer",
                    "scope": MICROSOFT_SCOPE if provider == "microsoft"
                    else "https://mail.google.com/"}
            if rotate:
                if self.retire_used:
                    self.valid_refresh_tokens.discard(used)
                body["refresh_token"] = f"rt-{n}"
                self.valid_refresh_tokens.add(body["refresh_token"])
            self.issued_access_tokens.append(body["access_token"])
        return 200, body

    def revoke_all(self) -> None:
        with self._lock:
            self.valid_refresh_tokens.clear()
