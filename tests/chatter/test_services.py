import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mailroom.chatter import services
from mailroom.chatter.models import Attachment, Message, Notification
from mailroom.core import blobs


def test_creating_a_record_logs_it(lead):
    messages = list(services.thread_queryset(Message, lead))
    assert [m.message_type for m in messages] == ["system"]
    assert "Lead created" in messages[0].body_html


def test_tracking_writes_odoo_style_lines(lead, bob):
    lead.stage = "qualified"
    lead.expected_revenue = 1200
    services.save_record(lead, actor=bob)
    latest = services.thread_queryset(Message, lead).first()
    lines = [str(t) for t in latest.tracking.all()]
    assert "Stage: New → Qualified" in lines
    assert any(line.startswith("Expected revenue: 0") for line in lines)


def test_save_without_change_writes_nothing(lead, bob):
    before = services.thread_queryset(Message, lead).count()
    services.save_record(lead, actor=bob)
    assert services.thread_queryset(Message, lead).count() == before


def test_post_message_sanitizes_html(lead, bob):
    msg = services.post_message(lead, actor=bob,
                                body_html='<p onclick="x()">Hi<script>alert(1)</script></p>'
                                          '<a href="javascript:alert(1)">x</a>')
    assert "script" not in msg.body_html
    assert "onclick" not in msg.body_html
    assert "javascript:" not in msg.body_html
    assert msg.message_id.startswith("<") and msg.message_id.endswith(">")


def test_comment_notifies_followers_but_note_does_not(lead, bob, customer):
    services.follow(lead, customer, actor=bob)
    comment = services.post_message(lead, actor=bob, body_text="Hello")
    note = services.log_note(lead, actor=bob, body_text="internal")
    assert Notification.objects.filter(message=comment, partner=customer).exists()
    assert not Notification.objects.filter(message=note).exists()


def test_other_company_cannot_post(lead, charlie):
    with pytest.raises(PermissionDenied):
        services.post_message(lead, actor=charlie, body_text="hi")


def test_empty_message_is_refused(lead, bob):
    with pytest.raises(ValidationError):
        services.post_message(lead, actor=bob, body_html="<script></script>")


def test_attachments_are_stored_once_by_content(lead, bob, settings):
    a = services.store_attachment(lead, actor=bob, name="../../etc/passwd",
                                  stream=io.BytesIO(b"same bytes"))
    b = services.store_attachment(lead, actor=bob, name="copy.txt",
                                  stream=io.BytesIO(b"same bytes"))
    assert a.name == "passwd"
    assert a.sha256 == b.sha256
    path = blobs.attachment_path(a.sha256)
    assert path.read_bytes() == b"same bytes"
    assert len([p for p in settings.ATTACHMENT_DIR.rglob("*") if p.is_file()]) == 1
    assert Attachment.objects.count() == 2


def test_attachment_size_limit(lead, bob, settings):
    settings.MAX_ATTACHMENT_BYTES = 10
    with pytest.raises(ValidationError):
        services.store_attachment(lead, actor=bob, name="big.bin", stream=io.BytesIO(b"x" * 11))
    assert not [p for p in settings.ATTACHMENT_DIR.rglob("*") if p.is_file()]


def test_styles_that_could_overlay_the_page_are_dropped(lead, bob):
    msg = services.post_message(
        lead, actor=bob,
        body_html='<p style="color: red; position: fixed; top: 0; z-index: 9999">Hi</p>')
    assert "color:red" in msg.body_html.replace(" ", "")
    assert "position" not in msg.body_html and "z-index" not in msg.body_html


def test_deleting_a_record_is_admin_only_and_audited(lead, bob, alice):
    from mailroom.business.crm.models import Lead
    from mailroom.core.models import AuditLog

    with pytest.raises(PermissionDenied):
        services.delete_record(lead, actor=bob)
    services.delete_record(lead, actor=alice)
    assert not Lead.objects.filter(pk=lead.pk).exists()
    assert not services.thread_queryset(Message, lead).exists()
    entry = AuditLog.objects.get(action="crm.lead.delete")
    assert entry.before["name"] == "Big deal" and entry.actor == alice


def test_admin_bulk_delete_goes_through_the_service(client, lead, alice):
    from django.urls import reverse

    from mailroom.core.models import AuditLog
    from tests.conftest import PASSWORD

    assert client.login(username="alice", password=PASSWORD)
    response = client.post(reverse("admin:crm_lead_changelist"), {
        "action": "delete_selected", "_selected_action": [lead.pk], "post": "yes"})
    assert response.status_code == 302
    assert AuditLog.objects.filter(action="crm.lead.delete", object_id=str(lead.pk)).exists()


def test_trusted_foreign_keys_skip_only_their_existence_query(acme, bob):
    """save_record(trusted=…): the router's own company and contact are not looked up
    again, while every other check still runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mailroom.business.crm.models import Lead
    from mailroom.chatter.services import save_record
    from mailroom.contacts.models import Partner

    partner = Partner.objects.create(company=acme, name="Ada", email="ada@client.example")
    with CaptureQueriesContext(connection) as plain:
        save_record(Lead(company=acme, name="Plain", partner=partner), actor=None)
    with CaptureQueriesContext(connection) as trusted:
        save_record(Lead(company=acme, name="Trusted", partner=partner), actor=None,
                    trusted=("company", "partner"))

    def lookups(captured):  # full_clean's "does this row exist?" for the two foreign keys
        return [q["sql"] for q in captured.captured_queries if q["sql"].startswith(
            "SELECT 1 AS") and ('"core_company"' in q["sql"] or '"contacts_partner"' in q["sql"])]

    assert len(lookups(plain)) == 2
    assert lookups(trusted) == []
    with pytest.raises(ValidationError) as refused:  # the other fields are still checked
        save_record(Lead(company=acme, name="", partner=partner), actor=None,
                    trusted=("company", "partner"))
    assert "name" in refused.value.message_dict


def test_follow_all_adds_followers_once_in_one_statement_and_keeps_to_the_company(
        lead, bob, customer, globex, django_assert_num_queries):
    from mailroom.chatter.models import Follower
    from mailroom.contacts.models import Partner

    grace = Partner.objects.create(company=lead.company, name="Grace", email="g@navy.example")
    services.follow(lead, customer, actor=bob)
    with django_assert_num_queries(1):  # no lookup and no savepoint: one INSERT
        services.follow_all(lead, [customer, grace], actor=None)
    assert sorted(Follower.objects.filter(object_id=lead.pk).values_list(
        "partner__name", flat=True)) == ["Ada Lovelace", "Grace"]
    stranger = Partner.objects.create(company=globex, name="Gus", email="gus@globex.example")
    with pytest.raises(ValidationError):
        services.follow_all(lead, [stranger], actor=None)
    assert not Follower.objects.filter(partner=stranger).exists()
