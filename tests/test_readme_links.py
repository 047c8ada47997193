"""Every local URL the README names answers for the demo admin: `http://127.0.0.1:8000/…`
links and the paths it quotes as code (`/outgoing/outgoingmail/`). A path with `<id>` after a
model label (`/documents/sales.quotation/<id>.pdf`) is tried with one of that model's rows.
A quoted single segment without a closing slash (`/approve` in "`…/done` (and `/approve`)")
is the tail of an API path, not a page.

The demo data comes from the real seeder, as a newcomer's first `scripts/run` makes it."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.core.management import call_command

README = Path(__file__).resolve().parents[1] / "README.md"
LOCAL = re.compile(r"http://127\.0\.0\.1:8000(/[^\s>)`\]]*)?")
QUOTED_PATH = re.compile(r"`(/[^`\s]*)`")
MODEL_ID = re.compile(r"/(\w+)\.(\w+)/<id>")
SUFFIX = re.compile(r"/[\w-]+")


def readme_paths() -> list[str]:
    text = README.read_text()
    paths = {match.group(1) or "/" for match in LOCAL.finditer(text)}
    paths |= {path for path in QUOTED_PATH.findall(text) if not SUFFIX.fullmatch(path)}
    return sorted(paths)


def test_the_readme_names_the_pages_a_newcomer_looks_for():
    paths = readme_paths()
    for expected in ("/", "/api/docs", "/outgoing/outgoingmail/", "/demo/caught-mail/"):
        assert expected in paths


@pytest.fixture
def demo_admin(db, settings, client):
    with socket.socket() as sock:  # the seeder tests its server against a catcher there
        sock.bind(("127.0.0.1", 0))
        settings.MAILROOM_MAIL_CATCHER = f"127.0.0.1:{sock.getsockname()[1]}"
    call_command("demo", stdout=io.StringIO())
    from mailroom.core.models import User

    client.force_login(User.objects.get(username="admin"))
    return client


def concrete(path: str) -> str:
    """`/documents/sales.quotation/<id>.pdf` → the same with a real quotation's id."""
    def one_row(match: re.Match) -> str:
        model = apps.get_model(match.group(1), match.group(2))
        row = model.objects.order_by("pk").first()
        assert row is not None, f"the demo has no {model._meta.label} for {path}"
        return f"/{match.group(1)}.{match.group(2)}/{row.pk}"

    path = MODEL_ID.sub(one_row, path)
    assert "<" not in path and "{" not in path, f"no way to fill in {path}"
    return path


def test_every_local_url_in_the_readme_answers_for_the_demo_admin(demo_admin):
    broken = []
    for path in readme_paths():
        response = demo_admin.get(concrete(path))
        location = response.get("Location", "")
        if response.status_code == 302 and "/login/" in urlsplit(location).path:
            broken.append(f"{path}: sends the admin to the login page")
        elif response.status_code not in (200, 302):
            broken.append(f"{path}: {response.status_code}")
    assert not broken, "README links that do not work:\n" + "\n".join(broken)
