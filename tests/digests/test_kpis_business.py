"""Business KPIs over a week in Paris that contains the spring-forward day (2026-03-29).

The week runs from Monday 2026-03-23 00:00 (UTC+1, 2026-03-22 23:00 UTC) to Monday
2026-03-30 00:00 (UTC+2, 2026-03-29 22:00 UTC): 167 hours. Each KPI gets rows on its first and
last second (counted) and one second either side (not counted), written through the real
services at a frozen clock, so a window computed in UTC, or a 7 × 24 h window, or one that
ignores the DST change, counts the wrong rows.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from datetime import UTC, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from mailroom.business.crm.models import Lead
from mailroom.business.helpdesk import services as helpdesk
from mailroom.business.helpdesk.models import Ticket
from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.business.projects import services as projects
from mailroom.business.projects.models import Task
from mailroom.business.recruitment import services as recruitment
from mailroom.business.recruitment.models import Applicant
from mailroom.business.sales import services as sales
from mailroom.business.sales.models import Quotation
from mailroom.chatter.models import Message
from mailroom.chatter.services import post_message, save_record, set_state
from mailroom.core import kpis
from mailroom.digests import periods
from mailroom.digests.board import Board

TZ = "Europe/Paris"
WEEK = periods.containing(periods.WEEKLY, dt.datetime(2026, 3, 25, 12, tzinfo=UTC), TZ)
START, END = WEEK.start, WEEK.end
BEFORE = START - timedelta(seconds=1)  # the previous week's last second
FIRST = START
LAST = END - timedelta(seconds=1)
AFTER = END  # the next week's first second


def test_the_window_is_the_dst_week_in_paris():
    assert (WEEK.first_day, WEEK.last_day) == (dt.date(2026, 3, 23), dt.date(2026, 3, 29))
    assert START == dt.datetime(2026, 3, 22, 23, tzinfo=UTC)
    assert END == dt.datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert END - START == timedelta(hours=167)


@contextmanager
def at(moment):
    with time_machine.travel(moment, tick=False):
        yield


def row(company, key):
    """(value, previous) as the digest shows them."""
    result = Board().row(company, kpis.get(key), WEEK)
    return result.value, result.previous


def value(company, key, period=WEEK):
    return Board().value(company, kpis.get(key), period)


# -- CRM --------------------------------------------------------------------------------------

def new_lead(company, actor, name="Deal", revenue="0"):
    return save_record(Lead(company=company, name=name, expected_revenue=D(revenue)),
                       actor=actor)


def test_new_leads_count_local_calendar_days(acme, bob):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        with at(moment):
            new_lead(acme, bob)
    assert row(acme, "crm.new_leads") == (2, 1)


def test_won_revenue_counts_leads_won_in_the_week(acme, bob):
    amounts = {BEFORE: "1000", FIRST: "200", LAST: "30", AFTER: "4"}
    for moment, amount in amounts.items():
        lead = new_lead(acme, bob, revenue=amount)
        with at(moment):
            set_state(lead, Lead.Stage.WON, actor=bob)
    lost_again = new_lead(acme, bob, revenue="5000")
    with at(FIRST + timedelta(days=1)):
        set_state(lost_again, Lead.Stage.WON, actor=bob)
        set_state(lost_again, Lead.Stage.LOST, actor=bob)
    assert row(acme, "crm.won_revenue") == (D("230.00"), D("1000.00"))
    lead = Lead.objects.get(expected_revenue=D("30"))
    assert lead.won_at == LAST


# -- Sales ------------------------------------------------------------------------------------

def quotation(company, customer, actor, price="100", currency=""):
    draft = Quotation(company=company, partner=customer, user=actor, currency=currency)
    return sales.set_lines(draft, [{"description": "Widgets", "quantity": 1,
                                    "price_unit": D(price)}], actor=actor)


def test_quotations_sent_orders_confirmed_and_revenue(acme, bob, customer):
    for moment, price in {BEFORE: "1", FIRST: "10", LAST: "100", AFTER: "1000"}.items():
        sent = quotation(acme, customer, bob, price)
        with at(moment):
            sales.mark_quotation_sent(sent, actor=bob)
            sales.confirm_quotation(sent, actor=bob)
    # confirmed without being sent: an order, not a sent quotation
    direct = quotation(acme, customer, bob, "20000")
    with at(LAST - timedelta(hours=1)):
        sales.confirm_quotation(direct, actor=bob)
    # cancelled after confirmation: sent, but no longer an order
    cancelled = quotation(acme, customer, bob, "300000")
    with at(FIRST + timedelta(hours=1)):
        sales.mark_quotation_sent(cancelled, actor=bob)
        sales.confirm_quotation(cancelled, actor=bob)
    sales.cancel_quotation(cancelled, actor=bob)
    # another currency: an order, but not in the company's money
    dollars = quotation(acme, customer, bob, "4000000", currency="USD")
    with at(FIRST + timedelta(hours=2)):
        sales.confirm_quotation(dollars, actor=bob)

    assert row(acme, "sales.quotations_sent") == (3, 1)
    assert row(acme, "sales.orders_confirmed") == (4, 1)
    assert row(acme, "sales.revenue") == (D("20110.00"), D("1.00"))


def test_a_quotation_sent_again_after_a_reset_counts_when_it_is_sent_again(acme, bob, customer):
    draft = quotation(acme, customer, bob)
    with at(BEFORE):
        sales.mark_quotation_sent(draft, actor=bob)
    sales.cancel_quotation(draft, actor=bob)
    assert Quotation.objects.get(pk=draft.pk).sent_at == BEFORE  # a cancelled one was sent
    sales.reset_quotation_to_draft(draft, actor=bob)
    assert Quotation.objects.get(pk=draft.pk).sent_at is None
    with at(LAST):
        sales.mark_quotation_sent(draft, actor=bob)
    assert row(acme, "sales.quotations_sent") == (1, 0)


# -- Invoicing --------------------------------------------------------------------------------

def invoice(company, customer, actor, *, date, price, due=None, currency=""):
    draft = invoicing.save_invoice(
        Invoice(company=company, partner=customer, user=actor, invoice_date=date,
                due_date=due, currency=currency), actor=actor)
    draft = invoicing.set_lines(draft, [{"description": "Support", "quantity": 1,
                                         "price_unit": D(price)}], actor=actor)
    return invoicing.post_invoice(draft, actor=actor)


def test_invoiced_counts_posted_invoices_by_their_local_date(acme, bob, customer):
    dates = {dt.date(2026, 3, 22): "1", dt.date(2026, 3, 23): "10",
             dt.date(2026, 3, 29): "100", dt.date(2026, 3, 30): "1000"}
    for date, price in dates.items():
        invoice(acme, customer, bob, date=date, price=price)
    draft = invoicing.save_invoice(Invoice(company=acme, partner=customer,
                                           invoice_date=dt.date(2026, 3, 25)), actor=bob)
    invoicing.set_lines(draft, [{"description": "Draft", "quantity": 1,
                                 "price_unit": D("5000")}], actor=bob)
    invoice(acme, customer, bob, date=dt.date(2026, 3, 25), price="70000", currency="USD")
    assert row(acme, "invoicing.invoiced") == (D("110.00"), D("1.00"))


def test_paid_counts_invoices_settled_in_the_week(acme, bob, customer):
    for moment, price in {BEFORE: "1", FIRST: "10", LAST: "100", AFTER: "1000"}.items():
        posted = invoice(acme, customer, bob, date=dt.date(2026, 3, 1), price=price)
        with at(moment):
            invoicing.pay_in_full(posted, actor=bob)
    partly = invoice(acme, customer, bob, date=dt.date(2026, 3, 1), price="500")
    with at(FIRST):
        invoicing.register_payment(partly, D("499"), actor=bob)
    assert row(acme, "invoicing.paid") == (D("110.00"), D("1.00"))
    assert Invoice.objects.get(amount_total=D("100")).paid_at == LAST


def test_overdue_is_what_was_due_and_unpaid_at_the_end_of_the_week(acme, bob, customer):
    march_1 = dt.date(2026, 3, 1)
    # due on the week's last day, unpaid: overdue at the week's end, not at the previous one
    invoice(acme, customer, bob, date=march_1, price="1", due=dt.date(2026, 3, 29))
    # due on the next week's first day: not overdue yet
    invoice(acme, customer, bob, date=march_1, price="10", due=dt.date(2026, 3, 30))
    # due earlier, paid in full after the week: it was overdue at both ends
    paid_later = invoice(acme, customer, bob, date=march_1, price="100",
                         due=dt.date(2026, 3, 20))
    with at(AFTER):
        invoicing.pay_in_full(paid_later, actor=bob)
    # due earlier, paid inside the week: overdue only at the previous week's end
    paid_inside = invoice(acme, customer, bob, date=march_1, price="1000",
                          due=dt.date(2026, 3, 20))
    with at(LAST):
        invoicing.pay_in_full(paid_inside, actor=bob)
    # partly paid: its amount due counts
    partly = invoice(acme, customer, bob, date=march_1, price="10000",
                     due=dt.date(2026, 3, 10))
    invoicing.register_payment(partly, D("9000"), actor=bob)

    result = Board().row(acme, kpis.get("invoicing.overdue"), WEEK)
    assert (result.value, result.previous) == (D("1101.00"), D("2100.00"))
    assert result.direction == "down" and result.good is True  # less overdue is good news
    assert kpis.get("invoicing.overdue").higher_is_better is False


# -- Helpdesk ---------------------------------------------------------------------------------

def ticket(company, actor, name="Printer on fire"):
    return helpdesk.save_ticket(Ticket(company=company, name=name), actor=actor)


def test_tickets_opened_and_closed(acme, bob):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        with at(moment):
            opened = ticket(acme, bob)
        with at(moment):
            helpdesk.mark_solved(opened, actor=bob)
    reopened = ticket(acme, bob)
    with at(FIRST):
        helpdesk.mark_solved(reopened, actor=bob)
    helpdesk.mark_in_progress(reopened, actor=bob)
    assert row(acme, "helpdesk.tickets_opened") == (2, 1)
    assert row(acme, "helpdesk.tickets_closed") == (2, 1)


def test_median_first_response_ignores_notes_system_lines_and_customer_mail(acme, bob,
                                                                            customer):
    with at(FIRST):
        fast = ticket(acme, bob, "Fast")
        slow = ticket(acme, bob, "Slow")
        ticket(acme, bob, "Never answered")
    with at(FIRST + timedelta(minutes=5)):
        # the customer writes and a colleague leaves a note: neither is a response
        post_message(fast, author_partner=customer, message_type=Message.Type.EMAIL,
                     body_text="Any news?", notify=False)
        post_message(slow, actor=bob, message_type=Message.Type.NOTE,
                     body_text="Looking into it", notify=False)
    with at(FIRST + timedelta(hours=1)):
        post_message(fast, actor=bob, body_text="On it", notify=False)
    with at(FIRST + timedelta(hours=3)):
        post_message(slow, actor=bob, message_type=Message.Type.EMAIL, body_text="Fixed",
                     notify=False)
        post_message(fast, actor=bob, body_text="Second answer", notify=False)
    with at(BEFORE):
        old = ticket(acme, bob, "Last week")
    with at(BEFORE + timedelta(minutes=30)):
        post_message(old, actor=bob, body_text="Answered", notify=False)
    assert row(acme, "helpdesk.first_response") == (7200.0, 1800.0)
    assert kpis.get("helpdesk.first_response").higher_is_better is False


def test_median_first_response_is_none_without_any_answer(acme, bob):
    with at(FIRST):
        ticket(acme, bob)
    assert value(acme, "helpdesk.first_response") is None


# -- Recruitment and projects -----------------------------------------------------------------

def test_new_applicants(acme, bob):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        with at(moment):
            recruitment.save_applicant(Applicant(company=acme, partner_name="Grace"),
                                       actor=bob)
    assert row(acme, "recruitment.new_applicants") == (2, 1)


def test_tasks_done(acme, bob):
    for moment in (BEFORE, FIRST, LAST, AFTER):
        task = projects.save_task(Task(company=acme, name="Ship it"), actor=bob)
        with at(moment):
            projects.mark_done(task, actor=bob)
    undone = projects.save_task(Task(company=acme, name="Not really"), actor=bob)
    with at(FIRST):
        projects.mark_done(undone, actor=bob)
    projects.set_stage(undone, Task.Stage.IN_PROGRESS, actor=bob)
    assert Task.objects.get(pk=undone.pk).done_at is None
    assert row(acme, "projects.tasks_done") == (2, 1)


# -- the registry ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", [
    "crm.new_leads", "crm.won_revenue", "sales.quotations_sent", "sales.orders_confirmed",
    "sales.revenue", "invoicing.invoiced", "invoicing.paid", "invoicing.overdue",
    "helpdesk.tickets_opened", "helpdesk.tickets_closed", "helpdesk.first_response",
    "recruitment.new_applicants", "projects.tasks_done", "outgoing.mails_sent",
    "outgoing.mails_failed", "outgoing.recipients_bounced", "incoming.received",
    "incoming.quarantined", "chatter.active_users", "chatter.messages_posted",
])
def test_every_kpi_is_registered_with_a_description_and_a_zero_week(key, acme, alice,
                                                                    client_for):
    kpi = kpis.get(key)
    assert kpi.group and kpi.label and kpi.description.endswith(".")
    assert kpi.unit in set(kpis.Unit)
    assert value(acme, key) in (0, None)
    if kpi.list_url is not None:  # the list behind the number opens, filtered to the week
        url = kpi.url(WEEK.local_start, WEEK.local_end)
        response = client_for(alice).get(url)
        assert response.status_code == 200, url
        assert "?e=1" not in response.get("Location", "")
