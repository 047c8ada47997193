"""The post rule: attachments, inline images, dangerous files and unverified senders."""

from __future__ import annotations

import pytest

from mailroom.chatter.models import Attachment, Message
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from tests.incoming.conftest import email_fixture, message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_attachments_are_stored_inline_images_kept_and_dangerous_files_flagged(deliver):
    mail = deliver(email_fixture("hostile_exe_and_inline_image.eml"))
    posted = Message.objects.get(pk=mail.chatter_message_id)
    names = {a.name: a for a in Attachment.objects.filter(message=posted)}
    assert set(names) >= {"invoice.exe"}
    assert names["invoice.exe"].is_dangerous
    logo = next(a for a in names.values() if a.mimetype == "image/png")
    assert not logo.is_dangerous
    assert f"/attachments/{logo.pk}/download/" in posted.body_html
    assert "cid:" not in posted.body_html


def test_unverified_sender_is_not_attributed_to_an_existing_contact(deliver, customer):
    mail = deliver(message(sender="Ada <ada@client.example>"))
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert posted.author_partner is None
    assert "not verified" in posted.author_name
    assert Partner.objects.filter(email="ada@client.example").count() == 1


def test_a_zip_holding_a_script_is_flagged_dangerous_and_the_trace_says_why(deliver):
    mail = deliver(email_fixture("zip_with_script.eml"))
    posted = Message.objects.get(pk=mail.chatter_message_id)
    (archive,) = Attachment.objects.filter(message=posted)
    assert archive.name == "Invoice_2026-4411.zip" and archive.is_dangerous
    assert "holds Invoice_2026-4411.pdf.js" in str(mail.trace)


@pytest.mark.parametrize(("fixture", "name", "why"), [
    ("rar_with_exe.eml", "Scan_0042.rar", "holds Scan_0042.pdf.exe"),
    ("seven_zip_nested_zip_script.eml", "Remittance_8812.7z",
     "holds Remittance.zip, which holds Payment_Advice_8812.pdf.js"),
    ("seven_zip_encrypted_names.eml", "DHL_Shipment_Label.7z",
     "is encrypted: the names of its files cannot be read, so they cannot be checked"),
])
def test_rar_7z_nested_and_encrypted_archives_are_flagged_and_the_trace_says_why(
        deliver, fixture, name, why):
    mail = deliver(email_fixture(fixture))
    assert mail.decision == D.CREATED
    (archive,) = Attachment.objects.filter(message_id=mail.chatter_message_id)
    assert archive.name == name and archive.is_dangerous
    assert archive.danger == f"the archive {name} {why}"  # the chatter's warning says it
    assert f"Attachment flagged dangerous: the archive {name} {why}." in str(mail.trace)


def test_a_new_sender_gets_a_contact_and_a_record_with_one_system_message(deliver):
    mail = deliver(message(sender="Grace Hopper <grace@navy.example>"), sender="grace@navy.example")
    assert mail.decision == D.CREATED
    partner = Partner.objects.get(email="grace@navy.example")
    system = Message.objects.filter(message_type=Message.Type.SYSTEM)
    # the new record's line names the new contact; the contact has no line of its own
    assert [m.body_html for m in system] == [
        "<p>Created from an email by Grace Hopper (a new contact).</p>"]
    assert system.get().object_id == mail.object_id
    assert not system.filter(object_id=partner.pk,
                             content_type__model="partner").exists()
