"""Automated emails: rules fire once per event inside the business transaction, date rules
once per record and date, broken templates never block the change, automatic inbound mail
never triggers anything."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mailroom.automation import services
from mailroom.automation.models import AutomationRule, AutomationRun
from mailroom.automation.tasks import run_date_rules
from mailroom.automation.triggers import company_today
from mailroom.business.helpdesk import services as helpdesk
from mailroom.business.helpdesk.models import Ticket
from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.business.recruitment import services as recruitment
from mailroom.business.recruitment.models import Applicant, JobPosition
from mailroom.business.sales import services as sales
from mailroom.business.sales.models import Quotation
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from mailroom.core import automatic
from mailroom.core.models import AuditLog
from mailroom.outgoing.compose import Composer
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating.models import EmailTemplate
from tests.outgoing.markers import IN_MEMORY_SQLITE

pytestmark = pytest.mark.django_db
D = Decimal
Trigger = AutomationRule.Trigger


def make_template(company, record_type: str, **fields) -> EmailTemplate:
    values = dict(name=f"Auto {record_type}", record_type=record_type, layout="plain",
                  subject="About {{ object.display_name }}", body_html="<p>Hello</p>",
                  partner_to="{{ object.partner.id }}")
    values.update(fields)
    return EmailTemplate.objects.create(company=company, **values)


def make_rule(company, record_type: str, template=None, **fields) -> AutomationRule:
    rule = AutomationRule(company=company, name=fields.pop("name", f"Rule {record_type}"),
                          record_type=record_type,
                          template=template or make_template(company, record_type), **fields)
    return services.save_rule(rule, actor=None)


def mails_for(record) -> list[OutgoingMail]:
    return [m for m in OutgoingMail.objects.all() if m.object_id == record.pk
            and m.content_type.model == record._meta.model_name]


def addresses(mail: OutgoingMail) -> list[str]:
    return list(mail.recipients.values_list("address", flat=True))


def notes(record) -> list[str]:
    return [m.body_html for m in thread_queryset(Message, record)
            if m.message_type == Message.Type.NOTE]


@pytest.fixture
def quotation(acme, bob, customer):
    draft = sales.save_quotation(Quotation(company=acme, partner=customer, user=bob),
                                 actor=bob)
    return sales.set_lines(draft, [{"description": "Widgets", "quantity": 3,
                                    "price_unit": D("100")}], actor=bob)


# --- events ------------------------------------------------------------------------------------

def test_quotation_confirmed_mails_the_customer_once(acme, bob, quotation, customer):
    rule = make_rule(acme, "sales.quotation", trigger=Trigger.STATE, state_field="state",
                     state_value="sale")
    assert mails_for(quotation) == []  # a draft is not the state
    sales.confirm_quotation(quotation, actor=bob)
    [mail] = mails_for(quotation)
    assert mail.is_automatic  # sent with Auto-Submitted: auto-generated
    assert addresses(mail) == [customer.email]
    assert mail.idempotency_key == f"auto:{rule.pk}:sales.quotation:{quotation.pk}:" \
                                   "state:state=sale"
    assert mail.subject == f"About {quotation}"
    composer = Composer()
    composer.load([mail], [mail.company_id])
    recipients = list(mail.recipients.all())
    raw, _ = composer.compose(mail, recipients, recipients)
    assert b"\r\nAuto-Submitted: auto-generated\r\n" in raw
    quotation.refresh_from_db()
    quotation.note = "Saved again"
    sales.save_quotation(quotation, actor=bob)  # saved twice: still one mail
    assert len(mails_for(quotation)) == 1
    assert AutomationRun.objects.get(rule=rule).mail == mail
    emails = [m for m in thread_queryset(Message, quotation)
              if m.message_type == Message.Type.EMAIL]
    assert len(emails) == 1  # logged on the chatter once


def test_leaving_and_reentering_a_state_does_not_mail_twice(acme, bob, quotation):
    make_rule(acme, "sales.quotation", trigger=Trigger.STATE, state_field="state",
              state_value="sale")
    sales.confirm_quotation(quotation, actor=bob)
    sales.cancel_quotation(quotation, actor=bob)
    sales.reset_quotation_to_draft(quotation, actor=bob)
    sales.confirm_quotation(quotation, actor=bob)
    assert len(mails_for(quotation)) == 1


def test_ticket_created_is_acknowledged(acme, bob, customer):
    make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="Printer on fire",
                                         partner=customer), actor=bob)
    [mail] = mails_for(ticket)
    assert mail.is_automatic and addresses(mail) == [customer.email]
    helpdesk.mark_solved(ticket, actor=bob)  # later changes are no creation
    assert len(mails_for(ticket)) == 1


def test_conditions_limit_the_records(acme, bob, customer):
    make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED, conditions={"priority": "3"})
    calm = helpdesk.save_ticket(Ticket(company=acme, name="Question", partner=customer),
                                actor=bob)
    urgent = helpdesk.save_ticket(Ticket(company=acme, name="Down", partner=customer,
                                         priority="3"), actor=bob)
    assert mails_for(calm) == [] and len(mails_for(urgent)) == 1


def test_applicant_moved_to_interview_is_invited(acme, bob):
    make_rule(acme, "recruitment.applicant", trigger=Trigger.STATE, state_field="stage",
              state_value="interview",
              template=make_template(acme, "recruitment.applicant", partner_to="",
                                     email_to="{{ object.email }}"))
    job = recruitment.save_job_position(JobPosition(company=acme, name="Engineer"), actor=bob)
    applicant = recruitment.save_applicant(
        Applicant(company=acme, job=job, partner_name="Noah", email="noah@mail.example"),
        actor=bob)
    assert mails_for(applicant) == []
    recruitment.move_to_interview(applicant, actor=bob)
    [mail] = mails_for(applicant)
    assert addresses(mail) == ["noah@mail.example"] and mail.is_automatic


def test_other_companies_rules_do_not_fire(acme, globex, charlie):
    make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    theirs = helpdesk.save_ticket(Ticket(company=globex, name="Theirs",
                                         email="x@globex.example"), actor=charlie)
    assert mails_for(theirs) == []


def test_inactive_rules_do_not_fire(acme, bob, customer):
    rule = make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    services.set_active(rule, False, actor=None)
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="Quiet", partner=customer),
                                  actor=bob)
    assert mails_for(ticket) == []


# --- failures ------------------------------------------------------------------------------------

def test_a_broken_template_leaves_the_change_and_a_note(acme, bob, customer):
    broken = make_template(acme, "helpdesk.ticket", name="Broken ack",
                           body_html="<p>{{ object.name | no_such_filter }}</p>")
    rule = make_rule(acme, "helpdesk.ticket", template=broken, name="Acknowledge",
                     trigger=Trigger.CREATED)
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="Printer on fire",
                                         partner=customer), actor=bob)
    assert Ticket.objects.filter(pk=ticket.pk).exists()
    assert mails_for(ticket) == []
    [note] = notes(ticket)
    assert "Automated email “Acknowledge” could not be sent" in note
    assert "Broken ack" in note
    rule.refresh_from_db()
    assert "Broken ack" in rule.last_error and rule.last_error_at is not None
    assert AutomationRun.objects.get(rule=rule).error


def test_no_recipient_is_reported_too(acme, bob):
    rule = make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="Anonymous"), actor=bob)
    assert mails_for(ticket) == []
    assert "could not be sent" in notes(ticket)[0]
    rule.refresh_from_db()
    assert "recipient" in rule.last_error


def test_the_mail_rolls_back_with_the_change(acme, bob, customer):
    from django.db import transaction

    make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    with pytest.raises(RuntimeError), transaction.atomic():
        helpdesk.save_ticket(Ticket(company=acme, name="Undone", partner=customer),
                             actor=bob)
        raise RuntimeError("the business transaction fails later")
    assert not OutgoingMail.objects.exists() and not AutomationRun.objects.exists()


# --- never answer automatic mail ---------------------------------------------------------------

def test_records_from_automatic_mail_trigger_nothing(acme, customer):
    make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    with automatic.suppressed():
        first = helpdesk.save_ticket(Ticket(company=acme, name="Out of office",
                                            partner=customer), actor=None)
    flagged = Ticket(company=acme, name="Auto-reply", partner=customer)
    flagged.triggered_by_automatic_mail = True
    helpdesk.save_ticket(flagged, actor=None)
    assert mails_for(first) == [] and mails_for(flagged) == []
    assert not AutomationRun.objects.exists()
    human = helpdesk.save_ticket(Ticket(company=acme, name="Real", partner=customer),
                                 actor=None)
    assert len(mails_for(human)) == 1  # the switch does not stick


# --- dates -------------------------------------------------------------------------------------

def posted_invoice(acme, bob, customer, due: datetime.date) -> Invoice:
    draft = invoicing.save_invoice(Invoice(company=acme, partner=customer, user=bob,
                                           invoice_date=due - datetime.timedelta(days=30),
                                           due_date=due), actor=bob)
    draft = invoicing.set_lines(draft, [{"description": "Support", "quantity": 1,
                                         "price_unit": D("80")}], actor=bob)
    return invoicing.post_invoice(draft, actor=bob)


def test_invoice_due_in_three_days_is_reminded_once(acme, bob, customer):
    rule = make_rule(acme, "invoicing.invoice", trigger=Trigger.DATE, date_field="due_date",
                     days=3, when="before",
                     conditions={"state": ["posted"], "payment_state": ["not_paid", "partial"]})
    today = company_today(acme)
    due = posted_invoice(acme, bob, customer, today + datetime.timedelta(days=3))
    later = posted_invoice(acme, bob, customer, today + datetime.timedelta(days=4))
    paid = posted_invoice(acme, bob, customer, today + datetime.timedelta(days=3))
    invoicing.register_payment(paid, paid.amount_total, actor=bob)
    draft = invoicing.save_invoice(Invoice(company=acme, partner=customer,
                                           invoice_date=today,
                                           due_date=today + datetime.timedelta(days=3)),
                                   actor=bob)
    assert run_date_rules().startswith("1 automated actions done")
    assert run_date_rules().startswith("0 automated actions done")  # the next hour
    [mail] = mails_for(due)
    assert mail.is_automatic and addresses(mail) == [customer.email]
    assert mail.idempotency_key.endswith(f"date:due_date={due.due_date.isoformat()}")
    assert mails_for(later) == mails_for(paid) == mails_for(draft) == []
    rule.refresh_from_db()
    assert rule.last_run_at is not None


def test_a_new_due_date_gets_a_new_reminder(acme, bob, customer):
    make_rule(acme, "invoicing.invoice", trigger=Trigger.DATE, date_field="due_date", days=0,
              conditions={"state": ["posted"]})
    today = company_today(acme)
    invoice = posted_invoice(acme, bob, customer, today)
    run_date_rules()
    Invoice.objects.filter(pk=invoice.pk).update(due_date=today + datetime.timedelta(days=1))
    run_date_rules()
    assert len(mails_for(invoice)) == 1
    import mailroom.automation.triggers as triggers

    tomorrow = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    rule = AutomationRule.objects.get()
    assert triggers.run_date_rule(rule, now=tomorrow) == (1, 0)
    assert triggers.run_date_rule(rule, now=tomorrow) == (0, 0)
    assert len(mails_for(invoice)) == 2


def test_days_after_a_datetime(acme, bob, customer):
    from mailroom.automation.triggers import run_date_rule

    rule = make_rule(acme, "helpdesk.ticket", trigger=Trigger.DATE, date_field="created_at",
                     days=2, when="after")
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="Old", partner=customer),
                                  actor=bob)
    now = datetime.datetime.now(datetime.UTC)
    assert run_date_rule(rule, now=now) == (0, 0)
    assert run_date_rule(rule, now=now + datetime.timedelta(days=2)) == (1, 0)
    assert len(mails_for(ticket)) == 1


# --- configuration -------------------------------------------------------------------------------

def test_validation_names_the_field(acme, globex):
    ticket_template = make_template(acme, "helpdesk.ticket")

    def refused(**fields) -> dict:
        rule = AutomationRule(company=acme, name="R", record_type="helpdesk.ticket",
                              template=ticket_template, **fields)
        with pytest.raises(ValidationError) as info:
            services.save_rule(rule, actor=None)
        return info.value.message_dict

    errors = refused(trigger=Trigger.STATE, state_field="stage", state_value="sale")
    assert "is not a stage of tickets" in errors["state_value"][0]
    assert "in_progress" in errors["state_value"][0]
    assert "no state field" in refused(trigger=Trigger.STATE, state_field="name",
                                       state_value="x")["state_field"][0]
    assert "not a date field" in refused(trigger=Trigger.DATE,
                                         date_field="name")["date_field"][0]
    assert refused(trigger=Trigger.CREATED, conditions={"stage": ["nope"]})["conditions"]
    rule = AutomationRule(company=acme, name="R", record_type="sales.quotation",
                          template=ticket_template, trigger=Trigger.CREATED)
    with pytest.raises(ValidationError, match="a template for tickets, not quotations"):
        services.save_rule(rule, actor=None)
    theirs = make_template(globex, "helpdesk.ticket")
    rule = AutomationRule(company=acme, name="R", record_type="helpdesk.ticket",
                          template=theirs, trigger=Trigger.CREATED)
    with pytest.raises(ValidationError, match="another company"):
        services.save_rule(rule, actor=None)


def test_who_may_change_rules(acme, alice, bob, tess, charlie):
    template = make_template(acme, "helpdesk.ticket")
    rule = AutomationRule(company=acme, name="Ack", record_type="helpdesk.ticket",
                          template=template)
    with pytest.raises(PermissionDenied):
        services.save_rule(rule, actor=bob)  # Users only view rules
    with pytest.raises(PermissionDenied):
        services.save_rule(rule, actor=charlie)
    services.save_rule(rule, actor=tess)
    rule.name = "Acknowledge"
    services.save_rule(rule, actor=alice)
    actions = list(AuditLog.objects.filter(object_type="automation.AutomationRule")
                   .order_by("pk").values_list("action", flat=True))
    assert actions == ["automation.rule.create", "automation.rule.change"]
    assert bob.has_perm("automation.view_automationrule")
    with pytest.raises(ValidationError, match="already exists"):
        services.save_rule(AutomationRule(company=acme, name="Acknowledge",
                                          record_type="helpdesk.ticket", template=template),
                           actor=tess)


def test_install_example_rules(acme):
    created = services.install_example_rules(acme)
    assert {(r.record_type, r.trigger) for r in created} == {
        ("sales.quotation", "state"), ("helpdesk.ticket", "created"),
        ("invoicing.invoice", "date"), ("recruitment.applicant", "state")}
    assert {(r.action, r.days, r.when) for r in created if r.trigger == "date"} == {
        ("email", 3, "before"), ("letter", 30, "after")}  # letters is installed
    assert services.install_example_rules(acme) == []  # idempotent


def test_admin_shows_service_refusals(client, alice, acme):
    template = make_template(acme, "helpdesk.ticket")
    client.force_login(alice)
    assert client.get("/automation/automationrule/").status_code == 200
    form = {"name": "Ack", "company": acme.pk, "record_type": "helpdesk.ticket",
            "action": "email", "trigger": "state", "state_field": "stage", "state_value": "sale",
            "date_field": "", "days": 0, "when": "before", "conditions": "{}",
            "template": template.pk, "active": "on"}
    response = client.post("/automation/automationrule/add/", form)
    assert response.status_code == 200
    assert "is not a stage of tickets" in response.content.decode()
    form["state_value"] = "solved"
    response = client.post("/automation/automationrule/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AutomationRule.objects.get().updated_by == alice


@IN_MEMORY_SQLITE
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_date_task_send_each_reminder_once(acme, bob, customer):
    import threading

    from django.db import connection

    from mailroom.automation.triggers import run_date_rule

    rule = make_rule(acme, "invoicing.invoice", trigger=Trigger.DATE, date_field="due_date",
                     days=3, conditions={"state": ["posted"]})
    due = company_today(acme) + datetime.timedelta(days=3)
    invoices = [posted_invoice(acme, bob, customer, due) for _ in range(6)]
    start = threading.Barrier(3)
    results, errors = [], []

    def worker() -> None:
        try:
            start.wait(10)
            results.append(run_date_rule(AutomationRule.objects.get(pk=rule.pk)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(sent for sent, _ in results) == 6
    assert [len(mails_for(invoice)) for invoice in invoices] == [1] * 6
