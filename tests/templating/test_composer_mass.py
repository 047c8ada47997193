"""The mass-send page: who gets the mail and who is skipped and why (cancelled documents, no
address, blacklisted), a preview of the first mail, and no double send — the reloaded page
shows the batch as sent and a second POST of a chunk queues nothing new."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from mailroom.business.crm.models import Lead
from mailroom.contacts.models import Partner
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate


@pytest.fixture
def lead_template(acme, tess):
    return services.save_template(EmailTemplate(
        company=acme, name="Lead follow-up", record_type="crm.lead", default_for="lead_followup",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Hello {{ object.partner.name }}</p>"), actor=tess)


@pytest.fixture
def leads(acme, customer):
    nomail = Partner.objects.create(company=acme, name="No Mail")
    banned = Partner.objects.create(company=acme, name="Banned", email="banned@client.example",
                                    is_blacklisted=True)
    return [Lead.objects.create(company=acme, name="Good one", partner=customer),
            Lead.objects.create(company=acme, name="Nobody", partner=nomail),
            Lead.objects.create(company=acme, name="Blocked", partner=banned)]


def open_page(client, leads, token="t1"):
    return client.post(reverse("admin:crm_lead_changelist"), {
        "action": "send_email", "_selected_action": [lead.pk for lead in leads],
        "csrfmiddlewaretoken": token})


def test_the_page_lists_recipients_and_skips_with_reasons_and_previews_the_first(
        client_for, bob, leads, lead_template):
    page = open_page(client_for(bob), leads)
    html = page.content.decode()
    rows = {row.record.name: row for row in page.context["rows"]}
    assert rows["Good one"].skip == "" and "ada@client.example" in rows["Good one"].to
    assert rows["Nobody"].skip == "No address: No Mail has no email address"
    assert rows["Blocked"].skip == "Blacklisted: banned@client.example"
    assert "Send 1 email" in html and "2</strong> will be skipped" in html
    assert page.context["first"].record.name == "Good one"
    assert 'id="preview-subject">About Good one<' in html


def test_cancelled_documents_are_skipped(client_for, acme, bob, customer):
    from mailroom.business.sales import services as sales
    from mailroom.business.sales.models import Quotation

    quotation = sales.set_lines(
        sales.save_quotation(Quotation(company=acme, partner=customer, user=bob), actor=bob),
        [{"description": "Widgets", "quantity": 1, "price_unit": Decimal("10")}], actor=bob)
    Quotation.objects.filter(pk=quotation.pk).update(state=Quotation.State.CANCEL)
    page = client_for(bob).post(reverse("admin:sales_quotation_changelist"), {
        "action": "send_email", "_selected_action": [quotation.pk]})
    assert [row.skip for row in page.context["rows"]] == ["Cancelled document"]
    assert 'id="mass-start" disabled' in page.content.decode()


def test_the_chunks_skip_what_the_page_skips_and_a_second_post_sends_nothing_new(
        client_for, bob, leads, lead_template):
    client = client_for(bob)
    page = open_page(client, leads)
    data = {"content_type": ContentType.objects.get_for_model(Lead).pk,
            "ids": page.context["ids"], "batch": page.context["batch"],
            "template": lead_template.pk, "offset": 0}
    first = client.post(reverse("templating:mass_chunk"), data)
    html = first.content.decode()
    assert "Nobody: skipped — No address" in html and "Blocked: skipped — Blacklisted" in html
    assert 'id="mass-start" disabled' in html and "Done: 3 of 3" in html
    assert [m.subject for m in OutgoingMail.objects.all()] == ["About Good one"]
    client.post(reverse("templating:mass_chunk"), data)  # a second click, a retried request
    assert OutgoingMail.objects.count() == 1


def test_reloading_the_page_shows_the_batch_as_sent_and_sends_nothing_new(
        client_for, bob, leads, lead_template):
    client = client_for(bob)
    page = open_page(client, leads)
    data = {"content_type": ContentType.objects.get_for_model(Lead).pk,
            "ids": page.context["ids"], "batch": page.context["batch"],
            "template": lead_template.pk, "offset": 0}
    client.post(reverse("templating:mass_chunk"), data)
    reloaded = open_page(client, leads)  # the browser posts the same action form again
    assert reloaded.context["batch"] == page.context["batch"]
    assert reloaded.context["already_sent"] == 1
    assert 'id="mass-start" disabled' in reloaded.content.decode()
    client.post(reverse("templating:mass_chunk"), {**data, "batch": reloaded.context["batch"]})
    assert OutgoingMail.objects.count() == 1
    again = open_page(client, leads, token="t2")  # chosen again on the list: a new batch
    assert again.context["batch"] != page.context["batch"] and not again.context["already_sent"]


def test_the_review_follows_the_template_select(client_for, bob, leads, lead_template, acme,
                                                tess):
    other = services.save_template(EmailTemplate(
        company=acme, name="To sales", record_type="crm.lead", email_to="sales@client.example",
        subject="Internal {{ object.name }}", body_html="<p>x</p>"), actor=tess)
    response = client_for(bob).get(reverse("templating:mass_review"), {
        "content_type": ContentType.objects.get_for_model(Lead).pk,
        "ids": ",".join(str(lead.pk) for lead in leads), "template": other.pk})
    assert [row.skip for row in response.context["rows"]] == ["", "", ""]
    assert 'id="mass-start-label" hx-swap-oob="true">Send 3 emails' in response.content.decode()
