"""Preview renders the unsaved edits: the template editor's preview and test send use the text
in the editor (checked as saving would check it), the composer's preview the subject and body
being written. Nothing is saved or sent by a preview."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import services
from mailroom.templating.models import EmailTemplate


@pytest.fixture
def lead_template(acme, tess):
    return services.save_template(EmailTemplate(
        company=acme, name="Lead follow-up", record_type="crm.lead",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Saved body for {{ object.partner.name }}</p>"), actor=tess)


def test_the_editor_preview_renders_the_unsaved_subject_and_body(client_for, tess, lead,
                                                                 lead_template):
    response = client_for(tess).post(reverse("templating:preview", args=[lead_template.pk]), {
        "record": lead.pk, "lang": "", "src_subject": "Edited: {{ object.name }}",
        "src_body_html": "<p>Unsaved words for {{ object.partner.name }}</p>"})
    assert response.status_code == 200
    rendered = response.context["rendered"]
    assert rendered.subject == "Edited: Big deal"
    assert "Unsaved words for Ada Lovelace" in rendered.html
    assert "Saved body" not in rendered.html
    lead_template.refresh_from_db()
    assert lead_template.subject == "About {{ object.name }}"  # nothing saved


def test_the_saved_template_is_previewed_without_edits(client_for, tess, lead, lead_template):
    response = client_for(tess).get(reverse("templating:preview", args=[lead_template.pk]),
                                    {"record": lead.pk})
    assert "Saved body for Ada Lovelace" in response.context["rendered"].html


def test_an_unsaved_unknown_placeholder_is_a_red_line_in_the_preview(client_for, tess, lead,
                                                                     lead_template):
    response = client_for(tess).post(reverse("templating:preview", args=[lead_template.pk]), {
        "record": lead.pk, "src_body_html": "<p>{{ object.partner.nam }}</p>"})
    assert response.status_code == 422
    assert "object.partner.nam" in " ".join(response.context["errors"])


def test_the_test_send_uses_the_unsaved_text(client_for, tess, lead, lead_template):
    tess.email = "tess@acme.example"
    tess.save()
    response = client_for(tess).post(reverse("templating:send_test", args=[lead_template.pk]), {
        "record": lead.pk, "src_subject": "Try {{ object.name }}"})
    assert response.status_code == 200, response.content.decode()
    assert OutgoingMail.objects.get().subject == "[Test] Try Big deal"


def test_the_composer_preview_shows_what_is_being_written(client_for, bob, lead, customer,
                                                         lead_template):
    url = reverse("templating:compose_preview",
                  args=[ContentType.objects.get_for_model(lead).pk, lead.pk])
    response = client_for(bob).post(url, {
        "key": "p" * 32, "template": lead_template.pk, "partners": [customer.pk],
        "to": ["new@client.example"], "subject": "My own subject",
        "body": "<p>Words not saved anywhere</p>", "when": "now"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="preview-subject">My own subject<' in page
    assert "Words not saved anywhere" in response.context["rendered"].html
    assert "ada@client.example" in page and "new@client.example" in page
    assert not OutgoingMail.objects.exists()
