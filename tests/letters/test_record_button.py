""""Send by post" on an invoice's and a quotation's own page opens the Send by Post page."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse


def test_the_invoice_page_has_send_by_post(client_for, bob, invoice):
    page = client_for(bob).get(reverse("admin:invoicing_invoice_change", args=[invoice.pk]))
    url = reverse("admin:invoicing_invoice_send_by_post", args=[invoice.pk])
    assert url in page.content.decode()
    response = client_for(bob).get(url)
    content_type = ContentType.objects.get_for_model(invoice)
    assert response.status_code == 302
    assert response["Location"] == reverse("letters:send", args=[content_type.pk, invoice.pk])
    assert "The address as it will print" in client_for(bob).get(
        response["Location"]).content.decode()


def test_the_quotation_page_has_send_by_post(client_for, bob, invoice):
    from mailroom.business.sales.models import Quotation

    quotation = Quotation.objects.create(company=invoice.company, partner=invoice.partner)
    page = client_for(bob).get(reverse("admin:sales_quotation_change", args=[quotation.pk]))
    assert reverse("admin:sales_quotation_send_by_post", args=[quotation.pk]) in \
        page.content.decode()
