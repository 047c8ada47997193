# ruff: noqa: F811 - the api_as fixture is imported, then named by tests
"""The outbox through the API (/api/v1/emails): enqueue with an idempotency key, refuse header
injection naming the field, company isolation, Mail Manager actions, list filters."""

import base64
import datetime as dt

import pytest
from django.utils import timezone

from mailroom.core.models import AuditLog
from mailroom.outgoing import services
from mailroom.outgoing.models import (
    FailureType,
    MailServer,
    OutgoingAttachment,
    OutgoingMail,
    OutgoingRecipient,
    SendAttempt,
)
from tests.api.support import api_as, fields_named  # noqa: F401 - api_as is a fixture

pytestmark = pytest.mark.django_db
URL = "/api/v1/emails"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def queue(company, **kwargs) -> OutgoingMail:
    args = dict(company=company, email_from="Acme <billing@acme.example>",
                to=[("Ada", "ada@client.example")], subject="Invoice 42", html="<p>Hi</p>")
    args.update(kwargs)
    return services.enqueue(**args)


def minimal(**extra) -> dict:
    return {"to": ["ada@client.example"], "subject": "Hello", "text": "Hi", **extra}


# --- enqueue -------------------------------------------------------------------------------

def test_enqueue_returns_201_with_the_queued_email(bob, acme, lead, api_as):
    soon = timezone.now() + dt.timedelta(hours=1)
    response = api_as(bob).post(URL, {
        "to": ["ada@client.example", {"name": "Ms Boss", "address": "boss@client.example"}],
        "cc": [{"address": "cc@client.example"}],
        "bcc": ["audit@acme.example"],
        "subject": "Your invoice",
        "html": "<p>Please find it attached.</p>",
        "text": "Please find it attached.",
        "attachments": [{"name": "invoice.pdf", "mimetype": "application/pdf",
                         "content_base64": b64(b"%PDF-1.4 fake")}],
        "record": {"type": "crm.lead", "id": lead.pk},
        "priority": "high",
        "purpose": "transactional",
        "scheduled_at": soon.isoformat(),
        "expires_at": (soon + dt.timedelta(days=1)).isoformat(),
        "reply_to": "Sales <sales@acme.example>",
        "headers": {"X-Campaign": "spring"},
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "outgoing" and body["priority"] == "high"
    assert body["company_id"] == acme.pk
    assert body["email_from"] == '"Acme Corp" <hello@acme.test>'  # the company's address
    assert body["message_id"].endswith("@acme.test>")
    assert body["record"] == {"type": "crm.lead", "id": lead.pk}
    assert [(r["kind"], r["name"], r["address"], r["status"]) for r in body["recipients"]] == [
        ("to", "", "ada@client.example", "pending"),
        ("to", "Ms Boss", "boss@client.example", "pending"),
        ("cc", "", "cc@client.example", "pending"),
        ("bcc", "", "audit@acme.example", "pending")]
    assert body["attachments"] == [{"name": "invoice.pdf", "mimetype": "application/pdf",
                                    "size": 13, "content_id": ""}]
    assert body["headers"] == {"X-Campaign": "spring"}
    assert body["attempts"] == [] and body["uncertain"] is False

    mail = OutgoingMail.objects.get(pk=body["id"])
    assert mail.author == bob and mail.record == lead
    assert mail.priority == OutgoingMail.Priority.HIGH
    assert mail.reply_to == '"Sales" <sales@acme.example>'
    assert mail.next_attempt_at == mail.scheduled_at
    assert OutgoingAttachment.objects.get(mail=mail).size == 13


def test_idempotency_key_in_the_body(bob, api_as):
    api = api_as(bob)
    first = api.post(URL, minimal(idempotency_key="order-42"))
    again = api.post(URL, minimal(idempotency_key="order-42", subject="Changed"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["subject"] == "Hello"
    assert OutgoingMail.objects.count() == 1


def test_idempotency_key_header(bob, api_as):
    api = api_as(bob)
    headers = {**api.headers, "Idempotency-Key": "c0ffee-1"}
    send = lambda body: api.client.post(  # noqa: E731
        URL, data=body, content_type="application/json", headers=headers)
    import json

    first, again = send(json.dumps(minimal())), send(json.dumps(minimal()))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["idempotency_key"] == "c0ffee-1"
    # the same key in the body finds the same mail
    assert api.post(URL, minimal(idempotency_key="c0ffee-1")).status_code == 200
    assert OutgoingMail.objects.count() == 1
    differ = send(json.dumps(minimal(idempotency_key="other")))
    assert differ.status_code == 422 and fields_named(differ) == ["idempotency_key"]


def test_idempotency_keys_are_per_company(bob, charlie, api_as):
    assert api_as(bob).post(URL, minimal(idempotency_key="k")).status_code == 201
    other = api_as(charlie).post(URL, minimal(idempotency_key="k"))
    assert other.status_code == 201
    assert OutgoingMail.objects.count() == 2


@pytest.mark.parametrize("extra, field", [
    ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
    ({"subject": "Hi\nthere"}, "subject"),
    ({"subject": "Nul\x00"}, "subject"),
    ({"to": ["ada@client.example\r\nBcc: x@evil.example"]}, "to.0.address"),
    ({"to": [{"name": "Ada\r\nBcc: x@evil.example", "address": "ada@client.example"}]},
     "to.0.name"),
    ({"cc": ["ok@client.example", "b@client.example\n"]}, "cc.1.address"),
    ({"bcc": [{"name": "x\x00", "address": "b@client.example"}]}, "bcc.0.name"),
    ({"email_from": "me@acme.example\r\nX-Evil: 1"}, "email_from"),
    ({"reply_to": "me@acme.example\nBcc: x@evil.example"}, "reply_to"),
    ({"headers": {"X-Tag": "a\r\nBcc: x@evil.example"}}, "headers.X-Tag"),
    ({"headers": {"X-Tag": "a\x00b"}}, "headers.X-Tag"),
    ({"headers": {"X-Evil\r\nBcc": "x"}}, "headers"),
    ({"headers": {"From": "ceo@acme.example"}}, "headers.From"),
    ({"attachments": [{"name": "a\r\nb.pdf", "content_base64": "AA=="}]},
     "attachments.0.name"),
    ({"attachments": [{"name": "a.pdf", "mimetype": "text/html\r\nX: y",
                       "content_base64": "AA=="}]}, "attachments.0.mimetype"),
    ({"attachments": [{"name": "a.png", "content_base64": "AA==", "content_id": "x\ny"}]},
     "attachments.0.content_id"),
    ({"idempotency_key": "k\r\n"}, "idempotency_key"),
])
def test_line_breaks_and_nul_in_headers_are_refused_naming_the_field(bob, api_as,
                                                                    extra, field):
    response = api_as(bob).post(URL, minimal(**extra))
    assert response.status_code == 422, response.content
    assert fields_named(response) == [field]
    assert not OutgoingMail.objects.exists()


@pytest.mark.parametrize("extra, field", [
    ({"to": ["not an address"]}, "to.0.address"),
    ({"to": [{"address": "ada@"}]}, "to.0.address"),
    ({"to": [42]}, "to.0"),
    ({"to": []}, "to"),
    ({"email_from": "nobody"}, "email_from"),
    ({"reply_to": "a@acme.example, b@acme.example"}, "reply_to"),
    ({"text": "", "html": ""}, "html"),
    ({"priority": "urgent"}, "priority"),
    ({"purpose": "both"}, "purpose"),
    ({"record": {"type": "no.such", "id": 1}}, "record.type"),
    ({"server_id": 987654}, "server_id"),
    ({"company_id": 987654}, "company_id"),
    ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
    ({"scheduled_at": "2999-01-02T00:00:00Z", "expires_at": "2999-01-01T00:00:00Z"},
     "expires_at"),
    ({"surprise": True}, "surprise"),
    ({"email_from": "A" * 301 + " <me@acme.example>"}, "email_from"),  # 322 when quoted
])
def test_invalid_input_is_422_naming_the_field(bob, api_as, extra, field):
    response = api_as(bob).post(URL, minimal(**extra))
    assert response.status_code == 422, response.content
    assert fields_named(response) == [field]
    assert not OutgoingMail.objects.exists()


@pytest.mark.parametrize("extra, field", [
    ({"attachments": [{"name": "logo.png", "content_base64": "AA==",
                       "content_id": "logo\u2028part"}]}, "attachments.0.content_id"),
    ({"attachments": [{"name": "a.txt", "content_base64": "AA=="},
                      {"name": "logo.png", "content_base64": "AA==",
                       "content_id": "logo\u0085part"}]}, "attachments.1.content_id"),
    ({"headers": {"X-Campaign": "x" * 5000}}, "headers.X-Campaign"),
    ({"to": ["a" * 65 + "@client.example"]}, "to.0.address"),
    ({"cc": ["ok@client.example", {"address": "b" * 65 + "@client.example"}]},
     "cc.1.address"),
    ({"email_from": "c" * 65 + "@acme.example"}, "email_from"),
    ({"headers": {"X-Mailroom-ID": "forged"}}, "headers.X-Mailroom-ID"),
    ({"headers": {"DKIM-Signature": "v=1; forged"}}, "headers.DKIM-Signature"),
])
def test_values_the_sender_would_refuse_are_422_naming_the_field(bob, api_as, extra, field):
    """The API answers what enqueue decides (one set of rules), not 201 and a failure later."""
    response = api_as(bob).post(URL, minimal(**extra))
    assert response.status_code == 422, response.content
    assert fields_named(response) == [field]
    assert not OutgoingMail.objects.exists()


def test_attachments_over_the_limit_are_refused(bob, api_as, settings):
    settings.MAX_ATTACHMENT_BYTES = 1000
    api = api_as(bob)
    big = api.post(URL, minimal(attachments=[
        {"name": "ok.txt", "content_base64": b64(b"x" * 10)},
        {"name": "big.bin", "content_base64": b64(b"x" * 1001)}]))
    assert big.status_code == 422
    assert fields_named(big) == ["attachments.1.content_base64"]
    assert "big.bin is larger than" in big.json()["detail"][0]["message"]
    together = api.post(URL, minimal(attachments=[
        {"name": f"{i}.bin", "content_base64": b64(b"x" * 600)} for i in range(2)]))
    assert together.status_code == 422 and fields_named(together) == ["attachments"]
    garbage = api.post(URL, minimal(attachments=[{"name": "a", "content_base64": "!!!"}]))
    assert fields_named(garbage) == ["attachments.0.content_base64"]
    exact = api.post(URL, minimal(attachments=[
        {"name": "exact.bin", "content_base64": b64(b"x" * 1000)}]))
    assert exact.status_code == 201, exact.content
    assert OutgoingMail.objects.count() == 1


def test_record_of_another_company_is_not_found(bob, globex_lead, api_as):
    response = api_as(bob).post(URL, minimal(record={"type": "crm.lead", "id": globex_lead.pk}))
    assert response.status_code == 404
    assert fields_named(response) == ["record.id"]
    assert not OutgoingMail.objects.exists()


def test_record_must_belong_to_the_emails_company(dana, globex_lead, api_as):
    # dana sees globex's lead, but the email goes out for acme (her current company)
    response = api_as(dana).post(URL, minimal(record={"type": "crm.lead",
                                                      "id": globex_lead.pk}))
    assert response.status_code == 422 and fields_named(response) == ["record.id"]
    in_globex = api_as(dana).post(URL, minimal(company_id=globex_lead.company_id,
                                               record={"type": "crm.lead",
                                                       "id": globex_lead.pk}))
    assert in_globex.status_code == 201, in_globex.content


def test_server_of_another_company_is_refused(bob, globex, acme, api_as):
    theirs = MailServer.objects.create(company=globex, name="globex relay", host="h")
    ours = MailServer.objects.create(company=acme, name="acme relay", host="h")
    api = api_as(bob)
    refused = api.post(URL, minimal(server_id=theirs.pk))
    assert refused.status_code == 422 and fields_named(refused) == ["server_id"]
    chosen = api.post(URL, minimal(server_id=ours.pk))
    assert chosen.status_code == 201 and chosen.json()["server_id"] == ours.pk


def test_only_members_with_a_role_may_use_the_api(acme, api_as, client):
    from tests.conftest import make_user

    assert client.get(URL).status_code == 401
    nobody = make_user("nobody", [acme], "User")
    nobody.groups.clear()
    api = api_as(nobody)
    assert api.get(URL).status_code == 403
    assert api.post(URL, minimal()).status_code == 403


# --- reading -------------------------------------------------------------------------------

def test_get_shows_recipients_attempts_and_failure(bob, acme, api_as):
    server = MailServer.objects.create(company=acme, name="relay", host="smtp.acme.example")
    mail = queue(acme, cc=["boss@client.example"])
    ada, boss = mail.recipients.all()
    OutgoingRecipient.objects.filter(pk=ada.pk).update(status="sent", smtp_code=250)
    OutgoingRecipient.objects.filter(pk=boss.pk).update(
        status="failed", failure_type=FailureType.INVALID_RECIPIENT, smtp_code=550,
        failure_reason="550 5.1.1 No such user")
    SendAttempt.objects.create(mail=mail, server=server, server_name="relay",
                               outcome="partial", smtp_code=550,
                               smtp_reply="5.1.1 No such user", duration_ms=84)
    OutgoingMail.objects.filter(pk=mail.pk).update(
        state="exception", failure_type=FailureType.INVALID_RECIPIENT, used_server=server,
        failure_reason="One recipient was refused.", was_uncertain=True, attempt_count=1)

    body = api_as(bob).get(f"{URL}/{mail.pk}").json()
    assert body["state"] == "exception" and body["uncertain"] is True
    assert (body["failure_type"], body["failure_reason"]) == (
        "invalid_recipient", "One recipient was refused.")
    assert body["used_server_id"] == server.pk and body["attempt_count"] == 1
    assert [(r["address"], r["status"], r["smtp_code"]) for r in body["recipients"]] == [
        ("ada@client.example", "sent", 250), ("boss@client.example", "failed", 550)]
    assert body["recipients"][1]["failure_reason"] == "550 5.1.1 No such user"
    [attempt] = body["attempts"]
    assert (attempt["server_name"], attempt["outcome"], attempt["smtp_code"],
            attempt["smtp_reply"], attempt["duration_ms"]) == (
        "relay", "partial", 550, "5.1.1 No such user", 84)


def test_list_filters_search_and_pagination(bob, acme, lead, customer, api_as):
    server = MailServer.objects.create(company=acme, name="relay", host="h")
    invoice = queue(acme, subject="Invoice 42", priority=OutgoingMail.Priority.HIGH,
                    record=lead)
    newsletter = queue(acme, subject="Spring news", to=["grace@navy.example"],
                       priority=OutgoingMail.Priority.LOW, purpose="bulk", server=server)
    failed = queue(acme, subject="Reminder", to=[("Alan Turing", "alan@bletchley.example")])
    OutgoingMail.objects.filter(pk=failed.pk).update(
        state="exception", failure_type=FailureType.REJECTED, used_server=server)
    old = timezone.now() - dt.timedelta(days=10)
    OutgoingMail.objects.filter(pk=invoice.pk).update(created_at=old)

    api = api_as(bob)

    def ids(**params):
        response = api.get(URL, params)
        assert response.status_code == 200, response.content
        return [m["id"] for m in response.json()["items"]]

    assert ids() == [failed.pk, newsletter.pk, invoice.pk]  # newest first
    assert ids(state="exception") == [failed.pk]
    assert ids(state="outgoing") == [newsletter.pk, invoice.pk]
    assert ids(priority="high") == [invoice.pk]
    assert ids(priority="low") == [newsletter.pk]
    assert ids(failure_type="rejected") == [failed.pk]
    assert ids(server_id=server.pk) == [failed.pk, newsletter.pk]  # chosen or used
    assert ids(record_type="crm.lead") == [invoice.pk]
    assert ids(record_type="crm.lead", record_id=lead.pk) == [invoice.pk]
    assert ids(record_type="helpdesk.ticket") == []
    since = (old + dt.timedelta(days=1)).isoformat()
    assert ids(created_after=since) == [failed.pk, newsletter.pk]
    assert ids(created_before=since) == [invoice.pk]
    assert ids(q="invoice") == [invoice.pk]
    assert ids(q="NAVY") == [newsletter.pk]
    assert ids(q="turing") == [failed.pk]
    assert ids(company_id=acme.pk, q="nothing like it") == []

    page = api.get(URL, {"limit": 2, "offset": 1}).json()
    assert page["count"] == 3 and [m["id"] for m in page["items"]] == [newsletter.pk,
                                                                        invoice.pk]
    assert fields_named(api.get(URL, {"state": "lost"})) == ["state"]
    assert fields_named(api.get(URL, {"limit": 0})) == ["limit"]
    assert fields_named(api.get(URL, {"q": "a\x00b"})) == ["q"]


# --- isolation -----------------------------------------------------------------------------

def test_other_companies_emails_do_not_exist(acme, charlie, mia, api_as):
    from tests.conftest import make_user

    mail = queue(acme)
    globex_manager = make_user("gmm", list(charlie.companies.all()), "Mail Manager")
    for user in (charlie, globex_manager):
        api = api_as(user)
        assert api.get(f"{URL}/{mail.pk}").status_code == 404
        assert api.post(f"{URL}/{mail.pk}/retry", {}).status_code == 404
        assert api.post(f"{URL}/{mail.pk}/cancel", {}).status_code == 404
        listed = api.get(URL).json()
        assert listed["count"] == 0 and listed["items"] == []
        assert api.get(URL, {"company_id": acme.pk}).json()["count"] == 0
        refused = api.post(URL, minimal(company_id=acme.pk))
        assert refused.status_code == 422 and fields_named(refused) == ["company_id"]
    mail.refresh_from_db()
    assert mail.state == "outgoing"
    assert api_as(mia).get(f"{URL}/{mail.pk}").status_code == 200


def test_idempotency_key_never_reveals_another_companys_email(bob, charlie, api_as):
    theirs = api_as(charlie).post(URL, minimal(idempotency_key="shared", subject="Secret"))
    ours = api_as(bob).post(URL, minimal(idempotency_key="shared"))
    assert ours.status_code == 201 and ours.json()["id"] != theirs.json()["id"]


# --- hub actions ---------------------------------------------------------------------------

def test_retry_and_cancel_are_for_mail_managers_and_audited(acme, bob, mia, api_as):
    mail = queue(acme)
    user_api, manager = api_as(bob), api_as(mia)
    for action in ("cancel", "retry"):
        denied = user_api.post(f"{URL}/{mail.pk}/{action}", {})
        assert denied.status_code == 403 and denied.json()["detail"][0]["message"]
    cancelled = manager.post(f"{URL}/{mail.pk}/cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = manager.post(f"{URL}/{mail.pk}/cancel", {})
    assert again.status_code == 409
    retried = manager.post(f"{URL}/{mail.pk}/retry", {})
    assert retried.status_code == 200 and retried.json()["state"] == "outgoing"
    assert list(AuditLog.objects.filter(action__startswith="outgoing.", object_id=str(mail.pk))
                .order_by("id").values_list("action", "actor_id")) == [
        ("outgoing.cancel", mia.pk), ("outgoing.retry", mia.pk)]


def test_administrators_may_act_too_and_sent_mail_cannot_be_retried(acme, alice, api_as):
    mail = queue(acme)
    OutgoingMail.objects.filter(pk=mail.pk).update(state="sent")
    response = api_as(alice).post(f"{URL}/{mail.pk}/retry", {})
    assert response.status_code == 409
    assert "sent" in response.json()["detail"][0]["message"]
    assert api_as(alice).post(f"{URL}/{mail.pk}/cancel", {}).status_code == 409
    assert not AuditLog.objects.filter(action__startswith="outgoing.",
                                       object_id=str(mail.pk)).exists()


def test_retry_of_a_failed_mail_requeues_only_failed_recipients(acme, mia, api_as):
    mail = queue(acme, cc=["boss@client.example"])
    ada, boss = mail.recipients.all()
    OutgoingRecipient.objects.filter(pk=ada.pk).update(status="sent")
    OutgoingRecipient.objects.filter(pk=boss.pk).update(status="failed", smtp_code=451)
    OutgoingMail.objects.filter(pk=mail.pk).update(state="exception",
                                                   failure_type=FailureType.UNREACHABLE)
    body = api_as(mia).post(f"{URL}/{mail.pk}/retry", {}).json()
    assert body["state"] == "outgoing" and body["failure_type"] == ""
    assert [r["status"] for r in body["recipients"]] == ["sent", "pending"]


def test_times_with_any_offset_are_stored_in_utc(bob, api_as):
    api = api_as(bob)
    # ISO 8601 allows offsets PostgreSQL refuses (beyond ±15:59)
    response = api.post(URL, minimal(scheduled_at="2999-01-01T00:00:00-17:55"))
    assert response.status_code == 201, response.content
    assert OutgoingMail.objects.get().scheduled_at == dt.datetime(2999, 1, 1, 17, 55,
                                                                  tzinfo=dt.UTC)
    listed = api.get(URL, {"created_after": "2000-01-01T00:00:00+17:55"})
    assert listed.status_code == 200 and listed.json()["count"] == 1
