"""Header-derived values are cut to fit, alike on SQLite and PostgreSQL: a 200 kB folded
Subject is kept as its first 998 characters ending in '…' on the inbound log, the new record's
chatter message and its title, and the routing trace says so."""

from __future__ import annotations

import pytest

from mailroom.business.crm.models import Lead
from mailroom.chatter.models import Message
from mailroom.incoming.models import InboundMail
from mailroom.lib import inbound
from tests.incoming.conftest import email_fixture, message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_a_200_kb_subject_is_cut_with_an_ellipsis_everywhere_it_is_stored(deliver):
    raw = email_fixture("folded_subject_200k.eml")
    full = inbound.decode_words(" ".join(
        raw.split(b"\r\nDate:")[0].split(b"Subject:")[1].decode().split()))
    assert len(full.encode()) > 200_000
    mail = deliver(raw)
    assert mail.decision == D.CREATED, mail.reason
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert len(posted.subject) == 998 and posted.subject.endswith("…")
    assert full.startswith(posted.subject[:-1].rstrip())
    assert mail.subject == posted.subject
    lead = Lead.objects.get()  # its title holds 200 characters: cut, and it says so
    assert 190 < len(lead.name) <= 200 and lead.name.endswith("…")
    assert full.startswith(lead.name[:-1])
    note = next(step["note"] for step in mail.trace if "Cut to fit" in step["note"])
    assert "Subject (" in note and "kept 998" in note


def test_a_long_display_name_fits_the_author_column(deliver):
    name = "Dr. " + "Grace Brewster Murray Hopper " * 40
    mail = deliver(message(sender=f'"{name}" <grace@navy.example>'))
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert len(posted.author_name) <= 200 and posted.author_name.endswith("…")
    assert "From name" in str(mail.trace)


def test_a_message_id_too_long_for_its_column_is_no_id(deliver):
    long_id = "<" + "x" * 1200 + "@navy.example>"
    mail = deliver(message(message_id=long_id, headers=[f"In-Reply-To: {long_id}"]))
    assert mail.decision == D.CREATED
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert len(posted.message_id) <= 998 and len(posted.in_reply_to) <= 998
