"""Invoices: numbering per year, due dates, posting, payments and invoicing an order."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mailroom.business.invoicing import services
from mailroom.business.invoicing.models import Invoice
from mailroom.business.sales import services as sales
from mailroom.business.sales.models import Quotation, Tax
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset

D = Decimal


@pytest.fixture
def vat(acme):
    return Tax.objects.create(company=acme, name="VAT 20%", percent=D("20"))


@pytest.fixture
def invoice(acme, bob, customer, vat):
    draft = services.save_invoice(
        Invoice(company=acme, partner=customer, user=bob,
                invoice_date=datetime.date(2026, 3, 10)), actor=bob)
    return services.set_lines(draft, [
        {"description": "Support plan", "quantity": 2, "price_unit": D("50"),
         "tax_ids": [vat.pk]},
    ], actor=bob)


@pytest.fixture
def posted(invoice, bob):
    return services.post_invoice(invoice, actor=bob)


def chatter_lines(record):
    return [str(t) for m in thread_queryset(Message, record) for t in m.tracking.all()]


def test_refs_count_per_company_and_year(invoice, acme, bob, customer):
    same_year = services.save_invoice(
        Invoice(company=acme, partner=customer, invoice_date=datetime.date(2026, 12, 31)),
        actor=bob)
    next_year = services.save_invoice(
        Invoice(company=acme, partner=customer, invoice_date=datetime.date(2027, 1, 2)),
        actor=bob)
    assert [invoice.ref, same_year.ref, next_year.ref] == [
        "INV/2026/00001", "INV/2026/00002", "INV/2027/00001"]


def test_due_date_defaults_to_thirty_days(invoice):
    assert invoice.due_date == datetime.date(2026, 4, 9)
    assert invoice.amount_total == D("120.00")
    assert invoice.amount_residual == D("120.00")
    assert invoice.currency == invoice.company.currency


def test_due_date_before_invoice_date_is_refused(invoice, bob):
    invoice.due_date = datetime.date(2026, 3, 9)
    with pytest.raises(ValidationError) as exc:
        services.save_invoice(invoice, actor=bob)
    assert "due_date" in exc.value.message_dict
    invoice.due_date = invoice.invoice_date  # due on receipt is fine
    services.save_invoice(invoice, actor=bob)


def test_post_sets_state_and_tracks_it(posted):
    assert posted.state == "posted"
    assert posted.payment_state == "not_paid"
    assert "State: Draft → Posted" in chatter_lines(posted)


def test_empty_invoice_cannot_be_posted(acme, bob, customer):
    draft = services.save_invoice(Invoice(company=acme, partner=customer), actor=bob)
    with pytest.raises(ValidationError, match="at least one line"):
        services.post_invoice(draft, actor=bob)


def test_payments_move_the_payment_state(posted, bob):
    services.register_payment(posted, D("20.00"), actor=bob)
    assert (posted.payment_state, posted.amount_paid, posted.amount_residual) == (
        "partial", D("20.00"), D("100.00"))
    assert "Payment: Not paid → Partially paid" in chatter_lines(posted)
    services.register_payment(posted, "100", actor=bob)
    assert (posted.payment_state, posted.amount_residual) == ("paid", D("0.00"))
    assert thread_queryset(Message, posted).first().body_html.count("Payment of 100.00") == 1


def test_bad_payments_are_refused(posted, invoice, bob):
    for amount in (0, -5, "abc", D("0.001"), D("120.01")):
        with pytest.raises(ValidationError):
            services.register_payment(posted, amount, actor=bob)
    posted.refresh_from_db()
    assert posted.amount_paid == D("0.00")


def test_drafts_take_no_payment(invoice, bob):
    with pytest.raises(ValidationError):
        services.register_payment(invoice, 10, actor=bob)


def test_posted_invoice_is_locked(posted, bob):
    with pytest.raises(ValidationError):
        services.set_lines(posted, [], actor=bob)
    posted.invoice_date = datetime.date(2026, 1, 1)
    with pytest.raises(ValidationError):
        services.save_invoice(posted, actor=bob)
    posted.refresh_from_db()
    posted.state = "draft"
    with pytest.raises(ValidationError):
        services.save_invoice(posted, actor=bob)


def test_cancel_and_reset_rules(posted, bob):
    services.cancel_invoice(posted, actor=bob)
    assert (posted.state, posted.amount_residual) == ("cancel", D("0.00"))
    services.reset_invoice_to_draft(posted, actor=bob)
    assert (posted.state, posted.amount_residual) == ("draft", D("120.00"))
    services.post_invoice(posted, actor=bob)
    services.register_payment(posted, 1, actor=bob)
    with pytest.raises(ValidationError):
        services.cancel_invoice(posted, actor=bob)
    with pytest.raises(ValidationError):
        services.reset_invoice_to_draft(posted, actor=bob)


def test_pay_in_full(posted, bob):
    services.pay_in_full(posted, actor=bob)
    assert posted.payment_state == "paid"


def test_other_company_cannot_pay(posted, charlie):
    with pytest.raises(PermissionDenied):
        services.register_payment(posted, 10, actor=charlie)


@pytest.fixture
def order(acme, bob, customer, vat):
    quotation = sales.save_quotation(Quotation(company=acme, partner=customer, user=bob,
                                               note="Net 30"), actor=bob)
    sales.set_lines(quotation, [
        {"description": "Design", "quantity": 3, "price_unit": D("33.33"), "discount": 5,
         "tax_ids": [vat.pk]},
        {"description": "Hosting", "quantity": 1, "price_unit": D("9.90")},
    ], actor=bob)
    return sales.confirm_quotation(quotation, actor=bob)


def test_invoice_from_quotation_copies_lines_and_totals(order, bob):
    invoice = services.create_invoice_from_quotation(order, actor=bob)
    assert invoice.quotation == order
    assert (invoice.partner, invoice.user, invoice.note) == (order.partner, order.user, "Net 30")
    assert (invoice.amount_untaxed, invoice.amount_tax, invoice.amount_total) == (
        order.amount_untaxed, order.amount_tax, order.amount_total)
    assert [(line.description, line.subtotal, [t.name for t in line.taxes.all()])
            for line in invoice.lines.all()] == [
        ("Design", D("94.99"), ["VAT 20%"]), ("Hosting", D("9.90"), [])]
    created = [m.body_html for m in thread_queryset(Message, invoice)]
    assert len(created) == 1 and order.ref in created[0]
    assert any(invoice.ref in m.body_html for m in thread_queryset(Message, order))


def test_an_order_is_invoiced_once(order, bob):
    first = services.create_invoice_from_quotation(order, actor=bob)
    with pytest.raises(ValidationError, match="already invoiced"):
        services.create_invoice_from_quotation(order, actor=bob)
    services.cancel_invoice(first, actor=bob)
    services.create_invoice_from_quotation(order, actor=bob)


def test_only_confirmed_orders_are_invoiced(acme, bob, customer):
    quotation = sales.save_quotation(Quotation(company=acme, partner=customer), actor=bob)
    with pytest.raises(ValidationError):
        services.create_invoice_from_quotation(quotation, actor=bob)


def test_order_with_posted_invoice_cannot_be_cancelled(order, bob):
    invoice = services.create_invoice_from_quotation(order, actor=bob)
    services.post_invoice(invoice, actor=bob)
    with pytest.raises(ValidationError, match="posted invoices"):
        sales.cancel_quotation(order, actor=bob)


def test_admin_bulk_pay_in_full(client, alice, posted):
    client.force_login(alice)
    response = client.post("/invoicing/invoice/", {
        "action": "pay_in_full", "_selected_action": [posted.pk]})
    assert response.status_code == 302
    posted.refresh_from_db()
    assert posted.payment_state == "paid"


def test_invoice_list_shows_one_coloured_payment_chip(client, alice, posted):
    client.force_login(alice)
    services.register_payment(posted, 10, actor=alice)
    html = client.get("/invoicing/invoice/").content.decode()
    assert "Partially paid" in html
    assert ">info<" not in html.replace(" ", "").replace("\n", "")  # the colour is no text


def test_quotation_list_offers_create_invoices(client, order, bob):
    """Invoicing adds its action to the quotation list (sales does not know invoicing)."""
    from django.urls import reverse

    from tests.conftest import PASSWORD

    assert client.login(username="bob", password=PASSWORD)
    url = reverse("admin:sales_quotation_changelist")
    assert "Create invoices for selected sales orders" in client.get(url).content.decode()
    client.post(url, {"action": "create_invoices", "_selected_action": [order.pk]})
    assert Invoice.objects.filter(quotation=order).count() == 1
