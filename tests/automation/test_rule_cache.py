"""The rule cache (automation.rule_cache): it decides only whether a rule may fire; a rule
switched off or edited — here, or by another process that sends no signal — is never acted
on from memory, and a rule saved here is seen at once."""

from __future__ import annotations

import pytest

from mailroom.automation import rule_cache, services
from mailroom.automation.models import AutomationRule
from mailroom.business.helpdesk import services as helpdesk
from mailroom.business.helpdesk.models import Ticket
from mailroom.templating.models import EmailTemplate
from tests.automation.test_rules import mails_for, make_rule

pytestmark = pytest.mark.django_db
Trigger = AutomationRule.Trigger


def ticket(acme, bob, customer, name):
    return helpdesk.save_ticket(Ticket(company=acme, name=name, partner=customer), actor=bob)


def test_a_rule_saved_or_switched_off_here_counts_at_once(acme, bob, customer):
    assert mails_for(ticket(acme, bob, customer, "Before any rule")) == []  # cache: no rules
    rule = make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    assert len(mails_for(ticket(acme, bob, customer, "After the rule"))) == 1
    services.set_active(rule, False, actor=None)  # an update(): no post_save signal
    assert mails_for(ticket(acme, bob, customer, "Switched off")) == []


def test_a_rule_switched_off_or_edited_elsewhere_is_read_again_before_it_fires(
        acme, bob, customer):
    rule = make_rule(acme, "helpdesk.ticket", trigger=Trigger.CREATED)
    assert len(mails_for(ticket(acme, bob, customer, "First"))) == 1
    assert rule_cache.rules_for_saves(acme.pk, "helpdesk.ticket")  # the cache holds it
    # another process edits the template and then switches the rule off (no signal here)
    EmailTemplate.objects.filter(pk=rule.template_id).update(subject="Edited elsewhere")
    [mail] = mails_for(ticket(acme, bob, customer, "Second"))
    assert mail.subject == "Edited elsewhere"
    AutomationRule.objects.filter(pk=rule.pk).update(active=False)
    assert rule_cache.rules_for_saves(acme.pk, "helpdesk.ticket")  # still cached…
    assert mails_for(ticket(acme, bob, customer, "Third")) == []  # …but not acted on
