"""Quotations: numbering, totals through `set_lines`, state rules and the admin form."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mailroom.business.sales import services
from mailroom.business.sales.models import Quotation, QuotationLine, Tax
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from mailroom.core.models import AuditLog

D = Decimal


@pytest.fixture
def vat(acme):
    return Tax.objects.create(company=acme, name="VAT 20%", percent=D("20"))


@pytest.fixture
def eco(acme):
    return Tax.objects.create(company=acme, name="Eco 5.5%", percent=D("5.5"))


@pytest.fixture
def quotation(acme, bob, customer):
    return services.save_quotation(Quotation(company=acme, partner=customer, user=bob),
                                   actor=bob)


@pytest.fixture
def filled(quotation, bob, vat, eco):
    return services.set_lines(quotation, [
        {"description": "Consulting", "quantity": D("3"), "price_unit": D("19.99"),
         "discount": D("10"), "tax_ids": [vat.pk, eco.pk]},
        {"description": "Setup", "quantity": 1, "price_unit": "100", "tax_ids": [vat.pk]},
    ], actor=bob)


def tracking(record):
    return [str(t) for m in thread_queryset(Message, record) for t in m.tracking.all()]


def test_refs_count_per_company(quotation, acme, globex, bob, charlie, customer):
    from mailroom.contacts.models import Partner

    second = services.save_quotation(Quotation(company=acme, partner=customer), actor=bob)
    other = Partner.objects.create(company=globex, name="Globex client")
    foreign = services.save_quotation(Quotation(company=globex, partner=other), actor=charlie)
    assert (quotation.ref, second.ref, foreign.ref) == ("S00001", "S00002", "S00001")
    assert quotation.currency == acme.currency
    assert quotation.validity_date > quotation.date


def test_totals_with_discount_and_two_taxes(filled):
    lines = list(filled.lines.all())
    assert [line.subtotal for line in lines] == [D("53.97"), D("100.00")]
    # 53.97: VAT 10.79 + eco 2.97; 100.00: VAT 20.00
    assert filled.amount_untaxed == D("153.97")
    assert filled.amount_tax == D("33.76")
    assert filled.amount_total == D("187.73")
    stored = Quotation.objects.get(pk=filled.pk)
    assert (stored.amount_untaxed, stored.amount_tax, stored.amount_total) == (
        D("153.97"), D("33.76"), D("187.73"))
    assert "Total: 0.00 → 187.73" in tracking(filled)


def test_rounding_is_half_up_per_line_and_per_tax(quotation, bob, acme):
    ten = Tax.objects.create(company=acme, name="Ten", percent=D("10"))
    services.set_lines(quotation, [
        {"description": "Half a nickel", "quantity": 1, "price_unit": D("0.05"),
         "discount": 50, "tax_ids": [ten.pk]},  # 0.025 → 0.03; tax 0.003 → 0.00
        {"description": "Tax tie", "quantity": 1, "price_unit": D("0.25"),
         "tax_ids": [ten.pk]},  # tax 0.025 → 0.03
    ], actor=bob)
    assert [line.subtotal for line in quotation.lines.all()] == [D("0.03"), D("0.25")]
    assert quotation.amount_tax == D("0.03")
    assert quotation.amount_total == D("0.31")


def test_lines_update_in_place_and_missing_lines_are_deleted(filled, bob, vat):
    first, second = filled.lines.all()
    services.set_lines(filled, [{"id": first.pk, "quantity": 1}], actor=bob)
    kept = list(QuotationLine.objects.filter(quotation=filled))
    assert [line.pk for line in kept] == [first.pk]
    assert {t.pk for t in kept[0].taxes.all()} == {t.pk for t in first.taxes.all()}
    assert kept[0].subtotal == D("17.99")  # 19.99 less 10 %
    assert not QuotationLine.objects.filter(pk=second.pk).exists()


def test_line_errors_are_reported_together_and_nothing_is_written(filled, bob, globex):
    foreign_tax = Tax.objects.create(company=globex, name="Foreign", percent=5)
    with pytest.raises(ValidationError) as exc:
        services.set_lines(filled, [
            {"description": "", "quantity": -1},
            {"description": "x", "tax_ids": [foreign_tax.pk]},
            {"description": "x", "discount": 120},
            {"description": "x", "colour": "red"},
            {"id": 999999, "description": "x"},
        ], actor=bob)
    messages = exc.value.message_dict["lines"]
    assert len(messages) == 5
    assert messages[0].startswith("Line 1:") and "quantity" in messages[0]
    assert "unknown tax" in messages[1]
    assert filled.lines.count() == 2


def test_confirm_moves_to_sale_with_a_tracking_line(filled, bob):
    services.confirm_quotation(filled, actor=bob)
    assert filled.state == Quotation.State.SALE
    assert "State: Quotation → Sales order" in tracking(filled)
    with pytest.raises(ValidationError):
        services.confirm_quotation(filled, actor=bob)
    with pytest.raises(ValidationError):
        services.set_lines(filled, [], actor=bob)


def test_sent_quotations_confirm_too(filled, bob):
    services.mark_quotation_sent(filled, actor=bob)
    services.mark_quotation_sent(filled, actor=bob)  # sending twice is fine
    assert filled.state == "sent"
    services.confirm_quotation(filled, actor=bob)
    assert filled.state == "sale"


def test_empty_quotation_cannot_be_confirmed(quotation, bob):
    with pytest.raises(ValidationError, match="at least one line"):
        services.confirm_quotation(quotation, actor=bob)


def test_cancel_rules(filled, bob):
    services.confirm_quotation(filled, actor=bob)
    services.cancel_quotation(filled, actor=bob)
    assert filled.state == "cancel"
    assert "State: Sales order → Cancelled" in tracking(filled)
    with pytest.raises(ValidationError):
        services.cancel_quotation(filled, actor=bob)
    with pytest.raises(ValidationError):
        services.confirm_quotation(filled, actor=bob)
    services.reset_quotation_to_draft(filled, actor=bob)
    assert filled.state == "draft"


def test_state_is_not_writable_through_save(filled, bob):
    filled.state = Quotation.State.SALE
    with pytest.raises(ValidationError):
        services.save_quotation(filled, actor=bob)
    with pytest.raises(ValidationError):
        services.save_quotation(Quotation(company=filled.company, partner=filled.partner,
                                          state="sale"), actor=bob)


def test_confirmed_quotation_keeps_its_customer(filled, bob, acme):
    from mailroom.contacts.models import Partner

    services.confirm_quotation(filled, actor=bob)
    filled.partner = Partner.objects.create(company=acme, name="Someone else")
    with pytest.raises(ValidationError):
        services.save_quotation(filled, actor=bob)
    filled.refresh_from_db()
    filled.note = "Delivery in May"  # terms may still change
    services.save_quotation(filled, actor=bob)


def test_validity_before_date_is_refused(quotation, bob):
    quotation.validity_date = quotation.date.replace(year=quotation.date.year - 1)
    with pytest.raises(ValidationError) as exc:
        services.save_quotation(quotation, actor=bob)
    assert "validity_date" in exc.value.message_dict


def test_customer_of_another_company_is_refused(acme, globex, bob):
    from mailroom.contacts.models import Partner

    foreign = Partner.objects.create(company=globex, name="Not yours")
    with pytest.raises(ValidationError) as exc:
        services.save_quotation(Quotation(company=acme, partner=foreign), actor=bob)
    assert "partner" in exc.value.message_dict


def test_other_company_cannot_touch_lines(filled, charlie):
    with pytest.raises(PermissionDenied):
        services.set_lines(filled, [], actor=charlie)
    with pytest.raises(PermissionDenied):
        services.confirm_quotation(filled, actor=charlie)


def test_taxes_are_administrator_configuration(acme, alice, bob):
    with pytest.raises(PermissionDenied):
        services.save_tax(Tax(company=acme, name="VAT", percent=20), actor=bob)
    tax = services.save_tax(Tax(company=acme, name="VAT", percent=20), actor=alice)
    assert AuditLog.objects.filter(action="tax.create", object_id=str(tax.pk)).exists()


def test_recompute_after_a_rate_change(filled, bob, vat):
    vat.percent = D("21")
    vat.save()
    services.recompute_totals(filled, actor=bob)
    assert filled.amount_tax == D("35.30")  # 11.33 + 2.97 + 21.00


def admin_form(customer, user, vat, **extra):
    return {
        "partner": customer.pk, "date": "2026-03-01", "validity_date": "2026-03-31",
        "user": user.pk, "company": customer.company_id, "note": "",
        "lines-TOTAL_FORMS": "2", "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-sequence": "10", "lines-0-description": "Audit", "lines-0-quantity": "2",
        "lines-0-price_unit": "50", "lines-0-discount": "0", "lines-0-taxes": [vat.pk],
        "lines-1-sequence": "10", "lines-1-description": "", "lines-1-quantity": "1",
        "lines-1-price_unit": "0", "lines-1-discount": "0",
        **extra,
    }


def test_admin_form_saves_lines_through_the_service(client, alice, customer, vat):
    client.force_login(alice)
    response = client.post("/sales/quotation/add/", admin_form(customer, alice, vat))
    assert response.status_code == 302, response.content[:2000]
    quotation = Quotation.objects.get()
    assert quotation.ref == "S00001"
    assert quotation.lines.count() == 1
    assert quotation.amount_total == D("120.00")
    assert quotation.state == "draft"


def test_admin_save_and_confirm_button_runs_after_the_lines(client, alice, customer, vat):
    client.force_login(alice)
    response = client.post("/sales/quotation/add/", admin_form(
        customer, alice, vat, sales_quotation_save_and_confirm="1"))
    assert response.status_code == 302
    quotation = Quotation.objects.get()
    assert quotation.state == "sale"
    assert quotation.amount_total == D("120.00")
    response = client.get(f"/sales/quotation/{quotation.pk}/change/")
    assert response.status_code == 200
    assert b"sales_quotation_save_and_confirm" not in response.content  # confirmed already
