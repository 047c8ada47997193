"""The 403, 404 and 500 pages: styled, in the back-office frame for a signed-in office user,
plain otherwise; the 500 page without the database; a 403 logs one line, not a traceback."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from mailroom.core import error_views

FORBIDDEN_FOR_BOB = reverse("admin:outgoing_mailserver_changelist")


def test_403_is_inside_the_back_office_frame(client, bob):
    client.force_login(bob)
    response = client.get(FORBIDDEN_FOR_BOB)
    assert response.status_code == 403
    assert [t.name for t in response.templates][:2] == ["403.html", "admin/base_site.html"]
    html = response.content.decode()
    assert 'id="nav-sidebar"' in html and 'id="error-page"' in html
    assert "You may not open this page" in html and "mailroom/errors.css" in html


def test_403_shows_the_reason_the_code_gave(bob):
    request = RequestFactory().get("/anything/")
    request.user = bob
    request.session = {}
    response = error_views.permission_denied(
        request, PermissionDenied("Only administrators can change taxes."))
    assert response.status_code == 403
    assert "Only administrators can change taxes." in response.content.decode()


def test_404_signed_in_is_framed_and_signed_out_is_plain(client, alice, settings):
    anonymous = client.get("/media/logos/no-such-logo.png")
    assert anonymous.status_code == 404
    html = anonymous.content.decode()
    assert 'id="error-page"' in html and "Page not found" in html
    assert 'id="nav-sidebar"' not in html and "mailroom/errors.css" in html
    # Django's message for a missing file names it on disk: a 404 never shows its message
    assert "does not exist" not in html and str(settings.MEDIA_ROOT) not in html

    client.force_login(alice)
    framed = client.get("/no-such-page/")
    assert framed.status_code == 404
    assert 'id="nav-sidebar"' in framed.content.decode()


def test_500_needs_no_database_and_no_request_context():
    """No `db` fixture: any query would fail this test."""
    request = RequestFactory().get("/broken/")
    request.user = AnonymousUser()
    response = error_views.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and "mailroom/errors.css" in html
    assert "mailroom/favicon.svg" in html


def test_500_handler_answers_for_a_crashing_view(client, settings):
    from django.urls import path

    def boom(request):
        raise RuntimeError("boom")

    class Urls:
        urlpatterns = [path("boom/", boom)]
        handler500 = "mailroom.core.error_views.server_error"

    settings.ROOT_URLCONF = Urls
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    assert 'id="error-page"' in response.content.decode()


@pytest.mark.django_db
def test_an_ordinary_403_logs_one_line_without_a_traceback(client, bob, caplog):
    client.force_login(bob)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(FORBIDDEN_FOR_BOB).status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].exc_info is None
    line = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(records[0])
    assert line == f"WARNING django.request: Forbidden (Permission denied): {FORBIDDEN_FOR_BOB}"


def test_a_real_error_keeps_its_traceback(client, settings, caplog):
    from django.urls import path

    def boom(request):
        raise RuntimeError("boom")

    class Urls:
        urlpatterns = [path("boom/", boom)]

    settings.ROOT_URLCONF = Urls
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="django.request"):
        client.get("/boom/")
    errors = [r for r in caplog.records if r.name == "django.request"]
    assert errors and errors[0].exc_info and errors[0].exc_info[0] is RuntimeError
