"""The composer's recipients: contacts of the record's company found as you type, typed
addresses checked (a red line naming the bad one), the record's followers proposed, errors
summed up at the top, and the chatter's @-mention list of the company's users."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from mailroom.chatter import services as chatter
from mailroom.contacts.models import Partner
from mailroom.outgoing.models import OutgoingMail


def urls(record) -> dict:
    args = [ContentType.objects.get_for_model(record).pk, record.pk]
    return {name: reverse(f"templating:{name}", args=args)
            for name in ("compose", "compose_recipients", "compose_preview")}


def test_recipients_lists_contacts_of_the_records_company_by_name_or_address(
        client_for, bob, lead, customer, acme, globex):
    Partner.objects.create(company=acme, name="Adam Smith", email="adam@client.example")
    Partner.objects.create(company=acme, name="Ada No-mail")  # no address: nothing to pick
    Partner.objects.create(company=globex, name="Ada Elsewhere", email="ada@globex.example")
    client = client_for(bob)
    found = client.get(urls(lead)["compose_recipients"], {"q": "ada"}).json()["results"]
    assert [(r["name"], r["email"]) for r in found] == [("Ada Lovelace", "ada@client.example"),
                                                      ("Adam Smith", "adam@client.example")]
    by_address = client.get(urls(lead)["compose_recipients"], {"q": "adam@"}).json()
    assert [r["id"] for r in by_address["results"]] == [
        Partner.objects.get(email="adam@client.example").pk]


def test_recipients_of_another_companys_record_are_404(client_for, charlie, lead):
    assert client_for(charlie).get(urls(lead)["compose_recipients"],
                                   {"q": "a"}).status_code == 404


def test_an_invalid_typed_address_is_refused_with_its_name_and_nothing_is_sent(
        client_for, bob, lead, customer):
    response = client_for(bob).post(urls(lead)["compose"], {
        "key": "f" * 32, "partners": [customer.pk], "to": ["ok@client.example", "not-an-address"],
        "subject": "Hi", "body": "<p>x</p>", "when": "now"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="composer-errors"' in page and 'tabindex="-1"' in page
    assert "Not a valid email address: not-an-address." in page
    # the chips the user chose are still there, the bad one with them to fix
    assert f'name="partners" value="{customer.pk}"' in page
    assert 'value="ok@client.example"' in page
    assert not OutgoingMail.objects.exists()


def test_chips_send_to_contacts_typed_addresses_and_cc(client_for, bob, lead, customer):
    response = client_for(bob).post(urls(lead)["compose"], {
        "key": "g" * 32, "partners": [customer.pk], "to": ["new@client.example"],
        "cc": ["boss@client.example"], "subject": "Hi", "body": "<p>x</p>", "when": "now"})
    assert response.status_code == 302
    mail = OutgoingMail.objects.get()
    assert sorted((r.kind, r.address) for r in mail.recipients.all()) == [
        ("cc", "boss@client.example"), ("to", "ada@client.example"),
        ("to", "new@client.example")]


def test_the_records_followers_are_proposed_but_not_myself(client_for, bob, lead, acme):
    ops = Partner.objects.create(company=acme, name="Olga Ops", email="olga@client.example")
    chatter.follow(lead, ops, actor=bob)
    page = client_for(bob).get(urls(lead)["compose"])
    followers = page.context["followers"]
    assert ops in followers
    assert all(p.user_id != bob.pk for p in followers)
    assert f'data-add-partner="{ops.pk}"' in page.content.decode()


def test_the_templates_contact_is_a_chip_when_the_composer_opens(client_for, acme, bob, tess,
                                                                 lead):
    from mailroom.templating import services
    from mailroom.templating.models import EmailTemplate

    services.save_template(EmailTemplate(
        company=acme, name="Lead follow-up", record_type="crm.lead", default_for="lead_followup",
        partner_to="{{ object.partner.id }}", subject="Hi", body_html="<p>x</p>"), actor=tess)
    page = client_for(bob).get(urls(lead)["compose"]).content.decode()
    assert f'name="partners" value="{lead.partner_id}"' in page


def test_schedule_field_is_inside_the_when_switch(client_for, bob, lead):
    page = client_for(bob).get(urls(lead)["compose"]).content.decode()
    # templating.css shows #schedule-field only while #when-later is checked
    assert 'id="when-now" checked' in page
    assert page.index('id="when-later"') < page.index('id="schedule-field"')
    assert 'type="datetime-local"' in page and "mr-datetime" in page
    assert "<select multiple" not in page and "select multiple" not in page


def test_mentions_list_the_companys_active_users(client_for, bob, alice, charlie, lead):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=alice.pk).update(first_name="Alice")
    panel = reverse("chatter:panel", args=[ContentType.objects.get_for_model(lead).pk, lead.pk])
    client = client_for(bob)
    found = client.get(reverse("templating:mention_users"), {"panel": panel, "q": "al"}).json()
    assert [u["login"] for u in found["results"]] == ["alice"]
    everyone = client.get(reverse("templating:mention_users"), {"panel": panel}).json()
    assert "charlie" not in [u["login"] for u in everyone["results"]]  # another company
    assert client.get(reverse("templating:mention_users"),
                      {"panel": "/admin/"}).status_code == 404


def test_mentions_of_another_companys_record_are_404(client_for, charlie, lead):
    panel = reverse("chatter:panel", args=[ContentType.objects.get_for_model(lead).pk, lead.pk])
    assert client_for(charlie).get(reverse("templating:mention_users"),
                                   {"panel": panel}).status_code == 404
