"""Automation actions: a rule does what its action says; an email needs its template (a red
line naming the field otherwise); an action an upper app registers runs through the same
firing — once per event, its outcome linked from the run, its failure a note."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError

from mailroom.automation import actions, services
from mailroom.automation.models import AutomationRule, AutomationRun
from mailroom.business.helpdesk import services as helpdesk
from mailroom.business.helpdesk.models import Ticket
from mailroom.chatter.models import Message
from mailroom.chatter.services import log_note, thread_queryset
from mailroom.outgoing.models import OutgoingMail
from tests.automation.test_rules import make_template

pytestmark = pytest.mark.django_db
Trigger = AutomationRule.Trigger


@pytest.fixture
def note_action():
    """An action of an "upper app": it leaves a note (a real row) and returns it; a ticket
    named "refuse" makes it refuse in plain words."""

    def run(rule, record, key):
        if record.name == "refuse":
            raise ValidationError("the ticket asked to be refused.")
        return log_note(record, actor=None, body_text=f"noted {key}")

    def validate(rule):
        if rule.record_type != "helpdesk.ticket":
            raise ValidationError({"action": "Notes are only for tickets here."})

    action = actions.register_action("test_note", "Leave a note", run, template="unused",
                                     noun="note", validate=validate)
    yield action
    actions._ACTIONS.pop("test_note", None)


def test_existing_rules_are_emails_and_an_email_needs_its_template(acme):
    rule = AutomationRule(company=acme, name="No template", record_type="helpdesk.ticket",
                          trigger=Trigger.CREATED)
    assert rule.action == "email" and rule.action_label == "Send an email"
    with pytest.raises(ValidationError) as info:
        services.save_rule(rule, actor=None)
    assert info.value.message_dict == {
        "template": ["Choose the template to send: “Send an email” needs one."]}
    assert not AutomationRule.objects.exists()


def test_an_unknown_action_is_refused_naming_the_field(acme):
    rule = AutomationRule(company=acme, name="Fax", record_type="helpdesk.ticket",
                          action="fax", template=make_template(acme, "helpdesk.ticket"))
    with pytest.raises(ValidationError) as info:
        services.save_rule(rule, actor=None)
    assert "Choose what the rule does" in info.value.message_dict["action"][0]
    assert "Send an email" in info.value.message_dict["action"][0]


def test_the_email_run_links_its_mail(acme, bob, customer):
    rule = services.save_rule(AutomationRule(
        company=acme, name="Ack", record_type="helpdesk.ticket", trigger=Trigger.CREATED,
        template=make_template(acme, "helpdesk.ticket")), actor=None)
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="Printer", partner=customer),
                                  actor=bob)
    run = AutomationRun.objects.get(rule=rule)
    assert run.ok and run.mail is not None and run.outcome == run.mail
    assert run.mail.object_id == ticket.pk
    assert isinstance(run.outcome, OutgoingMail)


def test_a_registered_action_runs_once_and_its_outcome_is_linked(acme, bob, customer,
                                                                 note_action, client, alice):
    rule = services.save_rule(AutomationRule(
        company=acme, name="Note it", record_type="helpdesk.ticket", action="test_note",
        trigger=Trigger.CREATED, template=make_template(acme, "helpdesk.ticket")), actor=None)
    assert rule.template is None  # an action that uses no template keeps none
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="Printer", partner=customer),
                                  actor=bob)
    helpdesk.mark_solved(ticket, actor=bob)
    run = AutomationRun.objects.get(rule=rule)
    assert run.ok and run.mail is None
    assert run.outcome_type == ContentType.objects.get_for_model(Message)
    assert "noted auto:" in run.outcome.body_html
    assert not OutgoingMail.objects.exists()
    client.force_login(alice)
    page = client.get("/automation/automationrun/").content.decode()
    assert f"message #{run.outcome_id}" in page
    rules = client.get("/automation/automationrule/").content.decode()
    assert "Leave a note" in rules  # the rule list shows the action


def test_a_refusing_action_is_the_runs_error_and_a_note(acme, bob, customer, note_action):
    rule = services.save_rule(AutomationRule(
        company=acme, name="Note it", record_type="helpdesk.ticket", action="test_note",
        trigger=Trigger.CREATED), actor=None)
    ticket = helpdesk.save_ticket(Ticket(company=acme, name="refuse", partner=customer),
                                  actor=bob)
    run = AutomationRun.objects.get(rule=rule)
    assert run.error == "the ticket asked to be refused." and run.outcome is None
    notes = [m.body_html for m in thread_queryset(Message, ticket)
             if m.message_type == Message.Type.NOTE]
    assert any("Automated note “Note it” could not be sent: the ticket asked to be refused."
               in note for note in notes)


def test_the_action_validates_the_rule(acme, note_action):
    rule = AutomationRule(company=acme, name="Note", record_type="sales.quotation",
                          action="test_note", trigger=Trigger.CREATED)
    with pytest.raises(ValidationError) as info:
        services.save_rule(rule, actor=None)
    assert info.value.message_dict == {"action": ["Notes are only for tickets here."]}


def test_the_admin_form_offers_the_actions_and_refuses_an_email_without_template(
        client, alice, acme):
    client.force_login(alice)
    page = client.get("/automation/automationrule/add/").content.decode()
    assert 'value="email"' in page and "Send an email" in page
    assert "Send an email: required, it is what is sent." in page
    form = {"name": "Ack", "company": acme.pk, "record_type": "helpdesk.ticket",
            "action": "email", "trigger": "created", "state_field": "", "state_value": "",
            "date_field": "", "days": 0, "when": "before", "conditions": "{}",
            "template": "", "active": "on"}
    response = client.post("/automation/automationrule/add/", form)
    assert response.status_code == 200
    assert "Choose the template to send: “Send an email” needs one." in \
        response.content.decode()
    assert not AutomationRule.objects.exists()
