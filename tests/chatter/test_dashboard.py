from django.urls import reverse

from tests.conftest import PASSWORD


def test_home_shows_current_company_counts_and_activity(client, lead, globex_lead, dana):
    assert client.login(username="dana", password=PASSWORD)
    page = client.get(reverse("admin:index"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Acme Corp" in body
    assert "Leads" in body
    assert "Lead created" in body
    assert "Lead Big deal" in body
    assert "Globex secret deal" not in body


def test_home_for_a_company_without_activity(client, charlie):
    assert client.login(username="charlie", password=PASSWORD)
    page = client.get(reverse("admin:index"))
    assert page.status_code == 200
    assert b"Nothing has happened in this company yet" in page.content
