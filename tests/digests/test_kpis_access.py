"""Who sees which KPI, and whose rows a KPI counts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from django.contrib.auth.models import Group, Permission

from mailroom.business.crm.models import Lead
from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.chatter.services import save_record
from mailroom.core import kpis
from mailroom.core.models import User
from mailroom.digests import mail
from mailroom.digests.board import Board
from tests.digests.conftest import make_digest
from tests.digests.test_kpis_business import FIRST, LAST, WEEK, at

INVOICE_KEYS = ["invoicing.invoiced", "invoicing.paid", "invoicing.overdue"]
ALL_KEYS = [kpi.key for kpi in kpis.registered()]


def office_user(username, company, *perms):
    """A user of `company` whose only group grants `perms` (no Mailroom role)."""
    user = User.objects.create_user(username=username, password="x", is_staff=True,
                                    email=f"{username}@acme.example")
    user.companies.set([company])
    user.current_company = company
    user.save()
    if perms:
        group = Group.objects.create(name=f"{username} only")
        for name in perms:
            app_label, codename = name.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
        user.groups.add(group)
    return User.objects.get(pk=user.pk)  # fresh permission cache


def posted_invoice(company, customer, actor, price):
    draft = invoicing.save_invoice(Invoice(company=company, partner=customer,
                                           invoice_date=dt.date(2026, 3, 25)), actor=actor)
    draft = invoicing.set_lines(draft, [{"description": "Audit", "quantity": 1,
                                         "price_unit": D(price)}], actor=actor)
    return invoicing.post_invoice(draft, actor=actor)


def test_a_user_who_cannot_see_invoices_gets_no_invoice_kpi_and_no_value(acme, bob,
                                                                          customer, domain):
    posted_invoice(acme, customer, bob, "98765.43")
    sales_rep = office_user("sam", acme, "crm.view_lead")
    nobody = office_user("nina", acme)
    assert not sales_rep.has_perm("invoicing.view_invoice")

    board = Board()
    seen = {row.kpi.key: row.value for row in board.rows(acme, ALL_KEYS, sales_rep, WEEK)}
    assert not set(INVOICE_KEYS) & set(seen)
    assert "crm.new_leads" in seen and "chatter.active_users" in seen
    assert D("98765.43") not in seen.values()
    assert [row.kpi.key for row in board.rows(acme, ALL_KEYS, nobody, WEEK)] == [
        "chatter.active_users"]
    # bob (role User) may see invoices: same board, same company, he gets the number
    bobs = {row.kpi.key: row.value for row in board.rows(acme, INVOICE_KEYS, bob, WEEK)}
    assert bobs["invoicing.invoiced"] == D("98765.43")

    # and the email rendered for the sales rep says nothing about invoices
    digest = make_digest(acme, kpis=["crm.new_leads", *INVOICE_KEYS])
    rendered = mail.render(digest, sales_rep, WEEK, board=board, tip=None, notice=False)
    amount = mail.format_value(D("98765.43"), "money", mail.locale_of(sales_rep, acme), "EUR")
    for text in (rendered.html, rendered.text):
        for shown in (amount, "98765", "98 765", "98\u202f765", "98\xa0765", "98,765"):
            assert shown not in text
        assert "Invoiced" not in text and "Overdue" not in text
    assert "New leads" in rendered.html


def test_an_inactive_user_sees_no_kpi(acme, bob):
    User.objects.filter(pk=bob.pk).update(is_active=False)
    bob.refresh_from_db()
    assert Board().rows(acme, ALL_KEYS, bob, WEEK) == []


def test_globex_rows_never_count_for_acme(acme, globex, bob, charlie, customer):
    from mailroom.contacts.models import Partner

    globex_customer = Partner.objects.create(company=globex, name="Hank",
                                             email="hank@globex.example")
    for moment in (FIRST, LAST):
        with at(moment):
            save_record(Lead(company=globex, name="Globex deal"), actor=charlie)
    with at(FIRST):
        save_record(Lead(company=acme, name="Acme deal"), actor=bob)
    posted_invoice(globex, globex_customer, charlie, "500")
    posted_invoice(acme, customer, bob, "7")

    board = Board()
    new_leads, invoiced = kpis.get("crm.new_leads"), kpis.get("invoicing.invoiced")
    assert board.value(acme, new_leads, WEEK) == 1
    assert board.value(globex, new_leads, WEEK) == 2
    assert board.value(acme, invoiced, WEEK) == D("7.00")
    assert board.value(globex, invoiced, WEEK) == D("500.00")
