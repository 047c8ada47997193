# ruff: noqa: F811 - the api_as fixture is imported, then named by tests
"""Templates through the API (/api/v1/templates): list, read, preview without sending, send
with an idempotency key, render errors as 422 naming the field, other companies' templates
and records as 404."""

import io

import pytest

from mailroom.business.helpdesk import services as helpdesk
from mailroom.business.helpdesk.models import Ticket
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from mailroom.core.blobs import store_blob
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating.models import EmailTemplate, TemplateAttachment, TemplateTranslation
from tests.api.support import api_as, fields_named  # noqa: F401 - api_as is a fixture

pytestmark = pytest.mark.django_db
URL = "/api/v1/templates"


@pytest.fixture
def ticket(acme, bob, customer):
    return helpdesk.save_ticket(Ticket(company=acme, name="Printer on fire", partner=customer),
                                actor=bob)


@pytest.fixture
def ack(acme):
    template = EmailTemplate.objects.create(
        company=acme, name="Acme ack", record_type="helpdesk.ticket", layout="plain",
        subject="Re: {{ object.name }} [{{ object.ref }}]",
        body_html="<p>Hello {{ object.partner.name }}, {{ ctx.extra|default('thanks') }}.</p>",
        partner_to="{{ object.partner.id }}", email_cc="desk@acme.example")
    TemplateTranslation.objects.create(template=template, lang="de_DE",
                                       subject="AW: {{ object.name }}",
                                       body_html="<p>Hallo {{ object.partner.name }}</p>")
    return template


@pytest.fixture
def theirs(globex):
    return EmailTemplate.objects.create(company=globex, name="Globex ack",
                                        record_type="helpdesk.ticket", subject="Hi",
                                        email_to="x@globex.example")


# --- list and read -----------------------------------------------------------------------------

def test_list_shows_own_and_shared_templates(bob, ack, theirs, api_as):
    response = api_as(bob).get(URL, {"record_type": "helpdesk.ticket"})
    assert response.status_code == 200, response.content
    items = {item["name"]: item for item in response.json()["items"]}
    assert "Globex ack" not in items
    mine = items["Acme ack"]
    assert mine["company_id"] == ack.company_id and mine["shared"] is False
    assert mine["languages"] == ["fr_FR", "de_DE"] and mine["record_type"] == "helpdesk.ticket"
    shared = items["Ticket: acknowledge receipt"]  # the predefined one
    assert shared["shared"] is True and shared["default_for"] == "acknowledge_ticket"
    everything = api_as(bob).get(URL).json()["items"]
    assert {i["record_type"] for i in everything} > {"helpdesk.ticket", "sales.quotation"}


def test_list_refuses_an_unknown_record_type(bob, api_as):
    response = api_as(bob).get(URL, {"record_type": "nope.nothing"})
    assert response.status_code == 422 and fields_named(response) == ["record_type"]


def test_read_one_template(bob, ack, api_as):
    body = api_as(bob).get(f"{URL}/{ack.pk}").json()
    assert body["subject"] == ack.subject and body["partner_to"] == "{{ object.partner.id }}"
    assert body["translations"][0]["lang"] == "de_DE"


def test_other_companies_templates_are_404(bob, charlie, ack, theirs, api_as):
    assert api_as(bob).get(f"{URL}/{theirs.pk}").status_code == 404
    response = api_as(charlie).get(f"{URL}/{ack.pk}")
    assert response.status_code == 404
    assert response.json() == {"detail": [{"field": None, "message": "No such template."}]}


# --- preview -----------------------------------------------------------------------------------

def test_preview_renders_without_sending(bob, ack, ticket, customer, api_as):
    sha256, size = store_blob(io.BytesIO(b"terms"))
    TemplateAttachment.objects.create(template=ack, name="terms.txt", mimetype="text/plain",
                                      size=size, sha256=sha256)
    response = api_as(bob).post(f"{URL}/{ack.pk}/preview",
                                {"record_id": ticket.pk, "ctx": {"extra": "see you"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["subject"] == f"Re: Printer on fire [{ticket.ref}]"
    assert "Hello Ada Lovelace, see you." in body["body"] and "see you" in body["text"]
    assert body["to"] == [{"name": customer.name, "address": customer.email,
                           "partner_id": customer.pk}]
    assert body["cc"] == ["desk@acme.example"]
    assert body["attachments"] == [{"name": "terms.txt", "mimetype": "text/plain", "size": 5}]
    assert body["lang"] == "fr_FR" and body["lang_missing"] is False
    german = api_as(bob).post(f"{URL}/{ack.pk}/preview",
                              {"record_id": ticket.pk, "lang": "de_DE"}).json()
    assert german["subject"] == "AW: Printer on fire" and german["lang_missing"] is False
    spanish = api_as(bob).post(f"{URL}/{ack.pk}/preview",
                               {"record_id": ticket.pk, "lang": "es_ES"}).json()
    assert spanish["lang_missing"] is True
    assert not OutgoingMail.objects.exists()


def test_render_errors_are_422_naming_the_field(bob, acme, ticket, api_as):
    broken = EmailTemplate.objects.create(
        company=acme, name="Broken", record_type="helpdesk.ticket", subject="Hi",
        partner_to="{{ object.partner.id }}",
        body_html="<p>one</p>\n<p>two</p>\n<p>{{ object.name | no_such_filter }}</p>")
    for action in ("preview", "send"):
        response = api_as(bob).post(f"{URL}/{broken.pk}/{action}", {"record_id": ticket.pk})
        assert response.status_code == 422, response.content
        [item] = response.json()["detail"]
        assert item["field"] == "body"
        assert item["message"].startswith("Template 'Broken', body")
        assert "line 3" in item["message"]
    assert not OutgoingMail.objects.exists()


def test_records_of_another_company_are_404(charlie, bob, ack, ticket, globex, api_as):
    theirs = helpdesk.save_ticket(Ticket(company=globex, name="Theirs",
                                         email="x@globex.example"), actor=charlie)
    shared = EmailTemplate.objects.get(name="Ticket: acknowledge receipt")
    response = api_as(charlie).post(f"{URL}/{shared.pk}/preview", {"record_id": ticket.pk})
    assert response.status_code == 404 and fields_named(response) == ["record_id"]
    response = api_as(bob).post(f"{URL}/{ack.pk}/send", {"record_id": theirs.pk})
    assert response.status_code == 404
    assert not OutgoingMail.objects.exists()


def test_bad_input_is_422(bob, ack, ticket, api_as):
    response = api_as(bob).post(f"{URL}/{ack.pk}/preview",
                                {"record_id": ticket.pk, "lang": "de\nDE", "more": 1})
    assert response.status_code == 422
    assert set(fields_named(response)) == {"lang", "more"}


# --- send --------------------------------------------------------------------------------------

def test_send_queues_once_per_idempotency_key(bob, ack, ticket, customer, api_as):
    api = api_as(bob)
    api.headers["Idempotency-Key"] = "ticket-ack-1"
    first = api.post(f"{URL}/{ack.pk}/send", {"record_id": ticket.pk})
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["state"] == "outgoing" and body["message_id"].startswith("<")
    assert body["record"] == {"type": "helpdesk.ticket", "id": ticket.pk}
    assert body["idempotency_key"] == "ticket-ack-1" and body["is_automatic"] is False
    assert [r["address"] for r in body["recipients"]] == [customer.email, "desk@acme.example"]
    again = api.post(f"{URL}/{ack.pk}/send", {"record_id": ticket.pk})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert OutgoingMail.objects.count() == 1
    emails = [m for m in thread_queryset(Message, ticket)
              if m.message_type == Message.Type.EMAIL]
    assert len(emails) == 1  # logged on the ticket once


def test_send_without_key_queues_each_time(bob, ack, ticket, api_as):
    for _ in range(2):
        assert api_as(bob).post(f"{URL}/{ack.pk}/send",
                                {"record_id": ticket.pk}).status_code == 201
    assert OutgoingMail.objects.count() == 2


def test_send_without_recipient_is_422(bob, acme, ticket, api_as):
    nobody = EmailTemplate.objects.create(company=acme, name="Nobody",
                                          record_type="helpdesk.ticket", subject="Hi",
                                          body_html="<p>Hi</p>")
    response = api_as(bob).post(f"{URL}/{nobody.pk}/send", {"record_id": ticket.pk})
    assert response.status_code == 422 and fields_named(response) == ["to"]


def test_unauthenticated_is_401(ack, client):
    assert client.get(URL).status_code == 401
