"""One date format across the back office: "6 Dec 2026, 14:05", as the chatter writes it."""

from __future__ import annotations

from datetime import UTC, datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from mailroom.outgoing import services
from mailroom.outgoing.models import OutgoingMail

WHEN = datetime(2026, 3, 7, 14, 5, tzinfo=UTC)


def test_formats_are_mailrooms():
    assert date_format(WHEN, "DATETIME_FORMAT") == "7 Mar 2026, 14:05"
    assert date_format(WHEN, "SHORT_DATETIME_FORMAT") == "7 Mar 2026, 14:05"
    assert date_format(WHEN.date(), "DATE_FORMAT") == "7 Mar 2026"
    assert date_format(WHEN.date(), "SHORT_DATE_FORMAT") == "7 Mar 2026"


def test_a_list_shows_dates_like_the_chatter(client, mia, acme):
    mail = services.enqueue(company=acme, email_from="billing@acme.example",
                            to=["zoe@client.example"], subject="Dated", text="Hi")
    OutgoingMail.objects.filter(pk=mail.pk).update(created_at=WHEN)
    client.force_login(mia)
    html = client.get(reverse("admin:outgoing_outgoingmail_changelist")).content.decode()
    local = timezone.localtime(WHEN)
    assert f"{local.day} {local:%b %Y, %H:%M}" in html
    assert "p.m." not in html and "a.m." not in html
