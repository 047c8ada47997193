import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mailroom.core.models import AuditLog
from mailroom.outgoing import services
from mailroom.outgoing.models import FailureType, OutgoingMail, OutgoingRecipient


def _enqueue(acme, **kwargs):
    args = dict(company=acme, email_from="Acme <billing@acme.example>",
                to=[("Ada", "ada@client.example")], subject="Invoice", html="<p>Hi</p>")
    args.update(kwargs)
    return services.enqueue(**args)


def test_enqueue_stores_mail_and_recipients(acme, lead):
    mail = _enqueue(acme, cc=["boss@client.example"], bcc=["audit@acme.example"], record=lead)
    assert mail.state == "outgoing"
    assert mail.message_id.endswith("@acme.example>")
    assert [(r.kind, r.address) for r in mail.recipients.all()] == [
        ("to", "ada@client.example"), ("cc", "boss@client.example"),
        ("bcc", "audit@acme.example")]
    assert mail.record == lead


@pytest.mark.parametrize("field,kwargs", [
    ("subject", {"subject": "Hi\r\nBcc: victim@example.com"}),
    ("email_from", {"email_from": "a@acme.example\nX: y"}),
    ("to.0.address", {"to": ["ada@client.example\r\nBcc: x@y.example"]}),
    ("headers.X-Tag", {"headers": {"X-Tag": "a\0b"}}),
])
def test_header_injection_is_refused_naming_the_field(acme, field, kwargs):
    with pytest.raises(ValidationError) as info:
        _enqueue(acme, **kwargs)
    assert field in info.value.message_dict
    assert not OutgoingMail.objects.exists()


def test_invalid_recipient_is_refused(acme):
    with pytest.raises(ValidationError) as info:
        _enqueue(acme, to=["ok@client.example", "not an address"])
    assert list(info.value.message_dict) == ["to.1.address"]


def test_idempotency_key_returns_the_first_mail(acme):
    first = _enqueue(acme, idempotency_key="order-42")
    second = _enqueue(acme, idempotency_key="order-42", subject="changed")
    assert first.pk == second.pk
    assert OutgoingMail.objects.count() == 1


def test_blacklisted_partner_is_not_sent(acme, customer):
    customer.is_blacklisted = True
    customer.save()
    mail = _enqueue(acme, to=[customer])
    assert mail.state == "exception" and mail.failure_type == FailureType.BLACKLISTED
    recipient = mail.recipients.get()
    assert recipient.status == OutgoingRecipient.Status.FAILED


def test_other_company_cannot_enqueue(acme, charlie):
    with pytest.raises(PermissionDenied):
        _enqueue(acme, actor=charlie)


def test_hub_actions_are_for_mail_managers_and_audited(acme, bob, mia):
    mail = _enqueue(acme)
    with pytest.raises(PermissionDenied):
        services.cancel([mail], actor=bob)
    assert services.cancel([mail], actor=mia) == 1
    mail.refresh_from_db()
    assert mail.state == "cancelled"
    assert services.retry([mail], actor=mia) == 1
    mail.refresh_from_db()
    assert mail.state == "outgoing"
    assert list(AuditLog.objects.filter(object_id=str(mail.pk)).order_by("id")
                .values_list("action", flat=True)) == ["outgoing.cancel", "outgoing.retry"]


def test_retry_never_resends_to_accepted_recipients(acme, mia):
    mail = _enqueue(acme, to=["a@client.example", "b@client.example"])
    a, b = mail.recipients.all()
    a.status, b.status = "sent", "failed"
    a.save(), b.save()
    OutgoingMail.objects.filter(pk=mail.pk).update(state="exception")
    mail.refresh_from_db()
    services.retry([mail], actor=mia)
    a.refresh_from_db(), b.refresh_from_db()
    assert a.status == "sent" and b.status == "pending"


def test_enqueue_many_links_contacts_in_one_batch(acme, customer, django_assert_max_num_queries):
    other = services.enqueue_many(company=acme, mails=[
        {"email_from": "a@acme.example", "to": ["ADA@client.example"], "subject": "1",
         "html": "<p>1</p>"}])
    assert other[0].recipients.get().partner == customer  # matched case-insensitively
    items = [{"email_from": "billing@acme.example", "to": [("Ada", customer.email)],
              "subject": f"Invoice {n}", "html": f"<p>{n}</p>"} for n in range(300)]
    with django_assert_max_num_queries(12):
        mails = services.enqueue_many(company=acme, mails=items)
    assert len(mails) == 300 and all(m.pk for m in mails)
    assert len({m.message_id for m in mails}) == 300
    assert OutgoingRecipient.objects.filter(partner=customer).count() == 301  # with the first


def test_enqueue_many_is_all_or_nothing_and_names_the_item(acme):
    items = [{"email_from": "a@acme.example", "to": ["x@client.example"], "html": "<p>x</p>"},
             {"email_from": "a@acme.example", "to": ["x@client.example"], "html": "<p>x</p>",
              "subject": "bad\r\nBcc: y@evil.example"}]
    with pytest.raises(ValidationError) as info:
        services.enqueue_many(company=acme, mails=items)
    assert "mails.1.subject" in info.value.message_dict
    assert not OutgoingMail.objects.exists()


def test_enqueue_many_respects_idempotency_keys(acme):
    item = {"email_from": "a@acme.example", "to": ["x@client.example"], "html": "<p>x</p>",
            "idempotency_key": "digest-2026-11-24"}
    first = services.enqueue_many(company=acme, mails=[item])
    again = services.enqueue_many(company=acme, mails=[item])
    assert first[0].pk == again[0].pk and OutgoingMail.objects.count() == 1


def test_enqueue_many_rows_read_back_like_saved_ones(acme, lead):
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(hours=2)
    [mail] = services.enqueue_many(company=acme, mails=[{
        "email_from": "a@acme.example", "to": [("Zoë", "zoe@client.example")],
        "subject": "Grüße", "html": "<p>é</p>", "headers": {"X-Campaign": "nov"},
        "scheduled_at": later, "record": lead, "priority": 3, "purpose": "bulk"}])
    stored = OutgoingMail.objects.get(pk=mail.pk)
    assert stored.headers == {"X-Campaign": "nov"} and stored.subject == "Grüße"
    assert stored.scheduled_at == later and stored.next_attempt_at == later
    assert stored.record == lead and stored.state == "outgoing" and stored.attempt_count == 0
    assert stored.recipients.get().name == "Zoë"


def test_hub_action_audit_rows_say_what_changed(acme, mia):
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(days=1)
    mail = _enqueue(acme, scheduled_at=later)
    assert services.send_now([mail], actor=mia) == 1
    entry = AuditLog.objects.get(action="outgoing.send_now")
    assert entry.before["next_attempt_at"] == str(later)
    assert entry.after["next_attempt_at"] != str(later)
    mail.refresh_from_db()
    assert mail.next_attempt_at <= timezone.now()
    services.cancel([mail], actor=mia)
    entry = AuditLog.objects.get(action="outgoing.cancel")
    assert entry.before["state"] == "outgoing" and entry.after["state"] == "cancelled"
    assert services.send_now([mail], actor=mia) == 0  # cancelled mails stay cancelled


# --- what the sender will accept is checked at enqueue ---------------------------------------

@pytest.mark.parametrize("field, kwargs", [
    ("attachments.0.content_id", {"attachments": [services.FileToSend(
        "logo.png", b"x", "image/png", "logo\u2028part")]}),
    ("attachments.1.content_id", {"attachments": [
        services.FileToSend("a.txt", b"x"),
        services.FileToSend("logo.png", b"x", "image/png", "logo\u0085part")]}),
    ("headers.X-Campaign", {"headers": {"X-Campaign": "x" * 5000}}),
    ("to.0.address", {"to": ["a" * 65 + "@client.example"]}),
    ("cc.1.address", {"cc": ["ok@client.example", ("Long", "b" * 65 + "@client.example")]}),
    ("email_from", {"email_from": "Acme <" + "c" * 65 + "@acme.example>"}),
    ("reply_to", {"reply_to": "a@acme.example, " + "d" * 65 + "@acme.example"}),
    ("headers.From", {"headers": {"From": "ceo@acme.example"}}),
    ("headers.Return-Path", {"headers": {"Return-Path": "<x@evil.example>"}}),
    ("headers.DKIM-Signature", {"headers": {"DKIM-Signature": "v=1; forged"}}),
    ("headers.x-mailroom-id", {"headers": {"x-mailroom-id": "forged"}}),
    ("headers.Auto-Submitted", {"headers": {"Auto-Submitted": "maybe"}}),
    ("headers", {"headers": {"X-" + "y" * 80: "too long a name"}}),
])
def test_values_the_sender_would_refuse_are_refused_at_enqueue(acme, field, kwargs):
    from mailroom.outgoing.checks import Unsendable

    with pytest.raises(Unsendable) as info:
        _enqueue(acme, **kwargs)
    assert list(info.value.message_dict) == [field]
    assert not OutgoingMail.objects.exists()


def test_values_at_the_limits_are_queued_and_can_be_built(acme):
    from mailroom.outgoing.compose import Composer

    mail = _enqueue(
        acme, to=["a" * 64 + "@client.example", "jürgen@exämple.com"],
        headers={"X-Campaign": "word " * 1000, "X-Label": "Grüße\u2028aus Köln",
                 "Auto-Submitted": "auto-replied"},
        attachments=[services.FileToSend("logo.png", b"x", "image/png", "logo@acme")])
    recipients = list(mail.recipients.all())
    composer = Composer()
    composer.load([mail], [acme.pk])
    built = composer.build(mail, recipients, recipients)
    assert b"Auto-Submitted: auto-replied" in built.raw and built.utf8_raw is not None
