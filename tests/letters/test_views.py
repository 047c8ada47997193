"""The letters screens: Send by Post page, the PDF views (company isolation), the admin."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from mailroom.core.models import AuditLog
from mailroom.letters import services, tasks
from mailroom.letters.models import Letter, PostalProvider


def send_url(record) -> str:
    return reverse("letters:send", args=[ContentType.objects.get_for_model(record).pk,
                                         record.pk])


def test_send_page_shows_the_address_pages_and_price_then_sends(client_for, bob, invoice):
    client = client_for(bob)
    page = client.get(send_url(invoice))
    assert page.status_code == 200
    html = page.content.decode()
    assert "12 Rue de la Paix" in html and "75002 Paris" in html
    # the invoice shows no address in the window: a cover page (and its blank back) in front
    assert 'class="mr-letter-pages">3<' in html and "mr-letter-note" in html
    assert "mr-red-line" not in html
    assert not PostalProvider.objects.exists()  # a page view writes nothing

    sent = client.post(send_url(invoice), {"postage": "priority", "duplex": "on"})
    letter = Letter.objects.get()
    assert letter.provider.name == "Print room"  # made with the first letter
    assert sent.status_code == 302
    assert sent["Location"] == reverse("admin:letters_letter_change", args=[letter.pk])
    assert letter.postage == "priority" and letter.duplex and not letter.color
    detail = client.get(sent["Location"])
    assert detail.status_code == 200
    assert reverse("letters:letter_pdf", args=[letter.pk]) in detail.content.decode()


def test_send_page_red_line_names_the_missing_zip(client_for, bob, invoice, customer):
    customer.zip = ""
    customer.save()
    client = client_for(bob)
    html = client.get(send_url(invoice)).content.decode()
    assert "mr-red-line" in html and "has no postcode (ZIP)" in html
    refused = client.post(send_url(invoice), {"postage": "standard"})
    assert refused.status_code == 200
    assert "has no postcode (ZIP)" in refused.content.decode()
    assert not Letter.objects.exists()


def test_another_company_gets_404_for_the_page_and_the_pdfs(client_for, bob, charlie, mia,
                                                            invoice):
    letter = services.send_by_post(invoice, actor=bob)
    tasks.letters_step("w")
    letter.refresh_from_db()
    pdf_url = reverse("letters:letter_pdf", args=[letter.pk])
    batch_url = reverse("letters:batch_pdf", args=[letter.batch_id])

    own = client_for(bob).get(pdf_url)
    assert own.status_code == 200 and own["Content-Type"] == "application/pdf"
    assert b"".join(own.streaming_content).startswith(b"%PDF")
    assert client_for(mia).get(batch_url).status_code == 200

    client = client_for(charlie)
    assert client.get(pdf_url).status_code == 404
    assert client.get(batch_url).status_code == 404
    assert client.get(send_url(invoice)).status_code == 404
    assert client.get(reverse("admin:letters_letter_change", args=[letter.pk])).status_code \
        == 404


def test_letters_list_and_mail_manager_cancel_through_the_admin(client_for, bob, mia, invoice):
    letter = services.send_by_post(invoice, actor=bob)
    client = client_for(mia)
    listing = client.get(reverse("admin:letters_letter_changelist"), {"state": "queued"})
    assert listing.status_code == 200 and "Ada Lovelace" in listing.content.decode()

    cancel_url = reverse("admin:letters_letter_cancel_letter", args=[letter.pk])
    assert client.get(cancel_url).status_code == 200  # asks first
    letter.refresh_from_db()
    assert letter.state == Letter.State.QUEUED
    client.post(cancel_url, {"confirm": "yes"})
    letter.refresh_from_db()
    assert letter.state == Letter.State.CANCELLED
    assert AuditLog.objects.filter(action="letters.letter.cancel", actor=mia).exists()


def test_a_user_cannot_cancel_through_the_admin(client_for, bob, invoice):
    letter = services.send_by_post(invoice, actor=bob)
    client = client_for(bob)
    response = client.post(reverse("admin:letters_letter_cancel_letter", args=[letter.pk]))
    assert response.status_code in (302, 403)
    letter.refresh_from_db()
    assert letter.state == Letter.State.QUEUED


def test_mark_a_batch_printed_from_its_page(client_for, bob, mia, invoice):
    letter = services.send_by_post(invoice, actor=bob)
    tasks.letters_step("w")
    letter.refresh_from_db()
    client = client_for(mia)
    page = client.get(reverse("admin:letters_printbatch_change", args=[letter.batch_id]))
    assert page.status_code == 200 and "Ada Lovelace" in page.content.decode()
    client.post(reverse("admin:letters_printbatch_mark_printed", args=[letter.batch_id]))
    letter.refresh_from_db()
    assert letter.state == Letter.State.PRINTED


def test_provider_credentials_are_write_only(client_for, mia, acme):
    from mailroom.letters.models import PostalProvider

    client = client_for(mia)
    add = client.post(reverse("admin:letters_postalprovider_add"), {
        "company": acme.pk, "name": "Print room 2", "kind": "local", "active": "on",
        "window_standard": "din5008a", "settings": "{}", "credentials": "s3cret-token"})
    assert add.status_code == 302, add.content.decode()[:2000]
    provider = PostalProvider.objects.get(name="Print room 2")
    assert provider.credentials == "s3cret-token"
    form = client.get(reverse("admin:letters_postalprovider_change", args=[provider.pk]))
    assert "s3cret-token" not in form.content.decode()
    client.post(reverse("admin:letters_postalprovider_change", args=[provider.pk]), {
        "company": acme.pk, "name": "Print room 2", "kind": "local", "active": "on",
        "window_standard": "din5008b", "settings": "{}", "credentials": ""})
    provider.refresh_from_db()
    assert provider.window_standard == "din5008b" and provider.credentials == "s3cret-token"
    assert "s3cret" not in str(list(AuditLog.objects.values_list("before", "after")))


def test_the_list_action_sends_one_letter_per_record_with_red_lines(client_for, acme, bob,
                                                                   invoice):
    import datetime
    from decimal import Decimal

    from mailroom.business.invoicing import services as invoicing
    from mailroom.business.invoicing.models import Invoice
    from mailroom.contacts.models import Partner

    nowhere = Partner.objects.create(company=acme, name="No Zip GmbH", street="Hauptstr. 1",
                                     city="Berlin", country="DE")
    draft = invoicing.save_invoice(Invoice(company=acme, partner=nowhere, user=bob,
                                           invoice_date=datetime.date(2026, 11, 25)), actor=bob)
    invoicing.set_lines(draft, [{"description": "Audit", "quantity": 1,
                                 "price_unit": Decimal("50")}], actor=bob)
    client = client_for(bob)
    chosen = client.post(reverse("admin:invoicing_invoice_changelist"), {
        "action": "send_by_post", "_selected_action": [invoice.pk, draft.pk]})
    assert chosen.status_code == 302
    page = client.get(chosen["Location"])
    html = page.content.decode()
    assert "The address of No Zip GmbH has no postcode (ZIP)." in html
    assert "Send 1 letter" in html

    ids = f"{invoice.pk},{draft.pk}"
    done = client.post(chosen["Location"].split("?")[0], {"ids": ids, "postage": "standard"})
    assert "1 letter queued" in done.content.decode()
    assert list(Letter.objects.values_list("object_id", flat=True)) == [invoice.pk]


def test_home_counts_letters_once_the_company_has_some(client_for, bob, mia, invoice):
    client = client_for(mia)
    assert "home-letters-state" not in client.get("/").content.decode()
    services.send_by_post(invoice, actor=bob)
    html = client.get("/").content.decode()
    assert 'data-letter-state="queued"' in html
    assert "?state__exact=queued" in html


def test_a_paused_provider_shows_in_the_mail_managers_inbox(client_for, mia, acme):
    from datetime import timedelta

    from django.utils import timezone

    from mailroom.letters.models import PostalProvider

    PostalProvider.objects.create(company=acme, name="Empty account", kind="local",
                                  paused_until=timezone.now() + timedelta(hours=1),
                                  paused_reason="No credit left.")
    page = client_for(mia).get(reverse("chatter:inbox")).content.decode()
    assert "Empty account is paused" in page and "No credit left." in page


def test_the_mass_send_goes_in_chunks_and_a_replayed_chunk_sends_nothing_twice(
        client_for, acme, bob, customer):
    import datetime
    import uuid
    from decimal import Decimal

    from mailroom.business.invoicing import services as invoicing
    from mailroom.business.invoicing.models import Invoice
    from mailroom.letters import views

    invoices = []
    for day in range(1, views.CHUNK + 3):
        draft = invoicing.save_invoice(Invoice(company=acme, partner=customer, user=bob,
                                               invoice_date=datetime.date(2026, 11, day)),
                                       actor=bob)
        invoices.append(invoicing.set_lines(draft, [{"description": "Audit", "quantity": 1,
                                                     "price_unit": Decimal("50")}], actor=bob))
    client = client_for(bob)
    url = reverse("letters:send_many", args=[ContentType.objects.get_for_model(Invoice).pk])
    data = {"ids": ",".join(str(i.pk) for i in invoices), "batch": uuid.uuid4().hex,
            "postage": "standard", "duplex": "on", "offset": "0"}
    first = client.post(url, data, HTTP_HX_REQUEST="true").content.decode()
    assert f"Sending… {views.CHUNK} of {len(invoices)}" in first
    assert f'"offset": "{views.CHUNK}"' in first  # the next chunk asks for itself
    assert Letter.objects.count() == views.CHUNK
    client.post(url, data, HTTP_HX_REQUEST="true")  # the same chunk again: nothing new
    assert Letter.objects.count() == views.CHUNK
    last = client.post(url, {**data, "offset": str(views.CHUNK)},
                       HTTP_HX_REQUEST="true").content.decode()
    assert f"Done: {len(invoices)} of {len(invoices)}" in last
    assert Letter.objects.count() == len(invoices)
