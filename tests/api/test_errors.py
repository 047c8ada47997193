"""Every API error is JSON in one shape — also the ones Django, ninja and waitress write
themselves: a wrong method, a body over the upload limit, an unknown path, a header waitress
refuses before Django runs."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest
from django.test import Client

from tests.api.support import api_as  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"detail"} and body["detail"], body
    assert all(set(item) == {"field", "message"} and item["message"]
               for item in body["detail"]), body
    assert body["detail"][0]["field"] == field
    return body


# --- 405 -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("put", "/api/v1/me"),
    ("delete", "/api/v1/partners"),
    ("post", "/api/v1/record-types"),
])
def test_wrong_method_is_a_json_405_that_names_the_allowed_ones(bob, api_as, method, path):  # noqa: F811
    api = api_as(bob)
    response = getattr(api.client, method)(path, headers=api.headers)
    body = assert_error(response, 405)
    assert response["Allow"]
    assert method.upper() in body["detail"][0]["message"]
    assert response["Allow"] in body["detail"][0]["message"]


# --- 413 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/json",
                                          "application/x-www-form-urlencoded"])
def test_body_over_the_upload_limit_is_a_json_413(bob, api_as, settings, content_type):  # noqa: F811
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    api = api_as(bob)
    body = json.dumps({"name": "x" * 4096}) if content_type == "application/json" else (
        "name=" + "x" * 4096)
    response = api.client.post("/api/v1/partners", data=body, content_type=content_type,
                               headers=api.headers)
    detail = assert_error(response, 413, "body")["detail"][0]["message"]
    assert "2048" in detail


def test_body_over_the_limit_on_an_unknown_path_is_still_json(bob, api_as, settings):  # noqa: F811
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = Client().post("/api/v1/no-such-thing", data="a=" + "x" * 4096,
                             content_type="application/x-www-form-urlencoded")
    assert_error(response, 404)


def test_a_body_under_the_limit_still_works(bob, api_as, settings):  # noqa: F811
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    assert api_as(bob).post("/api/v1/partners", {"name": "Small"}).status_code == 201


# --- unknown paths and CSRF ----------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/"),
    ("get", "/api/v1/no-such-thing"),
    ("post", "/api/v1/no-such-thing"),
    ("get", "/api/"),
    ("get", "/api/v2/partners"),
    ("delete", "/api/anything/at/all"),
])
def test_unknown_api_paths_are_json_404s(method, path):
    assert_error(getattr(Client(enforce_csrf_checks=True), method)(path), 404)


def test_session_post_without_csrf_token_is_a_json_403(bob):
    from tests.conftest import PASSWORD

    client = Client(enforce_csrf_checks=True)
    assert client.login(username="bob", password=PASSWORD)
    response = client.post("/api/v1/partners", data="{}", content_type="application/json")
    assert_error(response, 403)


def test_docs_page_stays_html():
    response = Client().get("/api/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


# --- headers waitress refuses --------------------------------------------------------------

@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    """A real `mailroom web` (waitress) on a free loopback port. The requests below are
    refused by waitress itself, before Django or a database are involved."""
    from tests.core.test_processes import free_port, mailroom, mailroom_env, stop, wait_for

    tmp = tmp_path_factory.mktemp("web")
    port = free_port()
    env = mailroom_env(tmp, f"sqlite:///{tmp / 'web.sqlite3'}")
    with (tmp / "web.err").open("w") as err:
        proc = subprocess.Popen(mailroom("web", "--port", str(port), "--threads", "1"),
                                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: "serving on" in (tmp / "web.err").read_text(), 60,
                 "`mailroom web` to listen", procs=[("mailroom web", proc)])
        yield port
    finally:
        stop(proc)


def raw_request(port: int, head: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("header", [b"X-API-Key: mr_\x00abc", b"Authorization: Bearer \x01mr_x",
                                    b"X-API-Key: mr_abc\x7f"])
def test_a_control_byte_in_a_header_is_a_json_400(web_server, header):
    status, headers, body = raw_request(web_server, b"GET /api/v1/me HTTP/1.1\r\n" + header
                                        + b"\r\n")
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    detail = json.loads(body)["detail"]
    assert detail[0]["field"] is None and "header" in detail[0]["message"].lower()


def test_outside_the_api_waitress_keeps_its_plain_text(web_server):
    status, headers, _ = raw_request(web_server, b"GET /login/ HTTP/1.1\r\n"
                                                 b"X-Thing: a\x00b\r\n")
    assert status == 400 and headers["content-type"].startswith("text/plain")
