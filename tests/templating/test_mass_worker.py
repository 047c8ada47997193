"""A large "Send email…" selection is rendered and queued by the worker (mass_engine.py):
the same mail as the per-record path, one chatter entry per record, the same skips with
their reasons, the bulk lane, progress the page follows, Stop, and nothing sent twice — not
on a second click, not when a worker dies mid-batch."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from mailroom.business.crm.models import Lead
from mailroom.chatter.models import Message
from mailroom.contacts.models import Partner
from mailroom.outgoing.models import OutgoingMail, Purpose
from mailroom.templating import mass_engine, mass_services, services
from mailroom.templating.mass_models import MassSend
from mailroom.templating.mass_render import MassRenderer
from mailroom.templating.models import EmailTemplate, TemplateTranslation
from mailroom.templating.rendering import render_template

BODY = ("<p>Hello {{ object.partner.name }},</p><p>About <b>{{ object.name }}</b> &amp; "
        "more: <a href=\"/crm/{{ object.id }}\">open</a></p>")


@pytest.fixture
def template(acme, tess):
    return services.save_template(EmailTemplate(
        company=acme, name="Lead news", record_type="crm.lead", text_lang="en_US",
        partner_to="{{ object.partner.id }}", subject="News about {{ object.name }}",
        lang="{{ object.partner.language }}", body_html=BODY), actor=tess,
        translations=[TemplateTranslation(lang="fr_FR", subject="Du nouveau : {{ object.name }}",
                                          body_html="<p>Bonjour {{ object.partner.name }}</p>")])


def _leads(acme, count, **extra):
    partners = [Partner.objects.create(company=acme, name=f"Person {n}",
                                       email=f"p{n}@client.example",
                                       language="fr_FR" if n % 3 == 0 else "en_US", **extra)
                for n in range(count)]
    return [Lead.objects.create(company=acme, name=f"Lead {n}", partner=partner)
            for n, partner in enumerate(partners)]


def _run(job: MassSend, owner="w1", **kwargs) -> bool:
    assert mass_engine.claim(owner) == job.pk
    return mass_engine.process(job.pk, owner, **kwargs)


def _start(template, leads, bob, batch="b1"):
    return mass_services.start_mass(template, ContentType.objects.get_for_model(Lead),
                                    [lead.pk for lead in leads], actor=bob,
                                    company=leads[0].company, batch=batch)


def test_the_fast_path_gives_the_per_record_mail(acme, bob, template):
    leads = _leads(acme, 4)
    renderer = MassRenderer(template, user=bob)
    for lead in leads:
        fast = renderer.render(lead)
        slow = render_template(template, lead, user=bob, with_attachments=False)
        assert (fast.subject, fast.body, fast.lang, fast.to) == (
            slow.subject, slow.body, slow.lang, slow.to)
        assert fast.text == slow.text
        assert _visible(fast.html) == _visible(slow.html)
        assert "{{" not in fast.html
        if fast.lang == "en_US":
            assert 'href="http://' in fast.html or 'href="https://' in fast.html
            assert f"/crm/{lead.pk}\"" in fast.html  # the relative link made absolute
    assert len(renderer._prepared) == 2  # one finished layout per language, not per record


def _visible(html: str) -> str:
    import html as html_lib
    return html_lib.unescape(html).replace("&#39;", "'")


def test_logic_in_the_body_takes_the_per_record_path_with_the_same_result(acme, bob, tess):
    logic = services.save_template(EmailTemplate(
        company=acme, name="Logic", record_type="crm.lead", partner_to="{{ object.partner.id }}",
        subject="Hi", body_html="{% if object.name %}<p>{{ object.name }}</p>{% endif %}"),
        actor=tess)
    lead = _leads(acme, 1)[0]
    fast = MassRenderer(logic, user=bob).render(lead)
    assert fast.html == render_template(logic, lead, user=bob, with_attachments=False).html


def test_the_worker_queues_one_bulk_mail_and_one_chatter_entry_per_record(acme, bob, template):
    leads = _leads(acme, 45)
    job = _start(template, leads, bob)
    assert _run(job) is True
    job.refresh_from_db()
    assert (job.state, job.sent, job.skipped, job.position) == ("done", 45, 0, 45)
    mails = OutgoingMail.objects.filter(idempotency_key__startswith="mass:b1:")
    assert mails.count() == 45
    assert set(mails.values_list("purpose", "priority")) == {(Purpose.BULK,
                                                              OutgoingMail.Priority.LOW)}
    mail = mails.get(object_id=leads[3].pk)
    assert mail.subject == "Du nouveau : Lead 3"  # the contact's language
    assert mail.recipients.get().address == "p3@client.example"
    message = Message.objects.get(pk=mail.chatter_message_id)
    assert (message.object_id, message.message_type, message.subject) == (
        leads[3].pk, Message.Type.EMAIL, "Du nouveau : Lead 3")
    assert "Bonjour Person 3" in message.body_html


def test_skips_are_listed_with_reasons_and_the_others_go(acme, bob, template):
    leads = _leads(acme, 25)
    Partner.objects.filter(pk=leads[1].partner_id).update(is_blacklisted=True)
    Partner.objects.filter(pk=leads[2].partner_id).update(email="")
    Lead.objects.filter(pk=leads[4].pk).delete()
    job = _start(template, leads, bob)
    _run(job)
    job.refresh_from_db()
    assert (job.sent, job.skipped) == (22, 3)
    reasons = {p["label"]: p["reason"] for p in job.problems}
    assert reasons["Lead 1"] == "Blacklisted: p1@client.example"
    assert reasons["Lead 2"] == "No address: Person 2 has no email address"
    assert reasons[f"#{leads[4].pk}"] == "No such record in your companies any more."
    assert not OutgoingMail.objects.filter(object_id__in=[leads[1].pk, leads[2].pk]).exists()


def test_a_second_click_finds_the_same_job_and_a_rerun_batch_sends_nothing_twice(
        acme, bob, template):
    leads = _leads(acme, 30)
    job = _start(template, leads, bob)
    assert _start(template, leads, bob).pk == job.pk
    # a worker died after its batch committed mails but (say) before the job was seen
    # again: the job is taken over from its position; the keys keep every mail single
    assert _run(job, max_batches=1) is False
    MassSend.objects.filter(pk=job.pk).update(position=0, sent=0)
    assert _run(job, owner="w2") is True
    assert OutgoingMail.objects.filter(idempotency_key__startswith="mass:b1:").count() == 30
    assert Message.objects.filter(object_id__in=[lead.pk for lead in leads],
                                  message_type=Message.Type.EMAIL).count() == 30


def test_a_cancelled_job_queues_no_more(acme, bob, template, monkeypatch):
    monkeypatch.setattr(mass_engine, "BATCH", 10)
    leads = _leads(acme, 30)
    job = _start(template, leads, bob)
    assert _run(job, max_batches=1) is False
    mass_services.cancel_mass(job, actor=bob)
    assert mass_engine.claim("w1") is None
    job.refresh_from_db()
    assert job.state == "cancelled" and "after 10 of 30" in job.state_reason
    assert OutgoingMail.objects.filter(idempotency_key__startswith="mass:b1:").count() == 10


def test_a_mail_the_outbox_refuses_is_one_records_problem(acme, bob, tess):
    bad_from = services.save_template(EmailTemplate(
        company=acme, name="Bad from", record_type="crm.lead",
        partner_to="{{ object.partner.id }}", subject="Hi {{ object.name }}",
        email_from="{{ object.name }}", body_html="<p>x</p>"), actor=tess)
    leads = _leads(acme, 22)
    Lead.objects.filter(pk=leads[5].pk).update(name="Someone <ok@acme.example>")
    job = _start(bad_from, leads, bob)
    _run(job)
    job.refresh_from_db()
    assert job.state == "done" and job.sent == 1 and job.skipped == 21
    assert job.problems[0] == {"id": leads[0].pk, "label": "Lead 0",
                               "reason": "From: 'Lead 0' is not a valid address."}


def test_the_page_hands_a_large_selection_to_the_worker_and_follows_it(
        client_for, acme, bob, template):
    leads = _leads(acme, 25)
    client = client_for(bob)
    page = client.post(reverse("admin:crm_lead_changelist"), {
        "action": "send_email", "_selected_action": [lead.pk for lead in leads],
        "csrfmiddlewaretoken": "t1"})
    data = {"content_type": ContentType.objects.get_for_model(Lead).pk,
            "ids": page.context["ids"], "batch": page.context["batch"],
            "template": template.pk, "offset": 0}
    answer = client.post(reverse("templating:mass_chunk"), data).content.decode()
    job = MassSend.objects.get(batch=page.context["batch"])
    assert "Waiting for a worker" in answer and f"/mass/jobs/{job.pk}/" in answer
    assert not OutgoingMail.objects.exists()  # nothing rendered in the request
    assert client.post(reverse("templating:mass_chunk"), data).status_code == 200
    assert MassSend.objects.count() == 1
    _run(job)
    status = client.get(reverse("templating:mass_job", args=[job.pk])).content.decode()
    assert "Done: 25 mails queued" in status and "every 1s" not in status


def test_another_companys_job_is_not_found(client_for, acme, charlie, bob, template):
    job = _start(template, _leads(acme, 21), bob)
    client = client_for(charlie)
    assert client.get(reverse("templating:mass_job", args=[job.pk])).status_code == 404
    assert client.post(reverse("templating:mass_cancel", args=[job.pk])).status_code == 404
    assert MassSend.objects.get(pk=job.pk).state == "queued"
