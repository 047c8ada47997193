# ruff: noqa: F811 - the api_as fixture is imported, then named by a test
"""An alias never creates or posts anything in another company (issue 10, #2).

A Mail Manager of Globex used to save an alias with defaults {"company_id": <acme>} and mail
to it created a lead inside Acme; a foreign user_id or a forced thread on Acme's record was
accepted too."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.urls import reverse

from mailroom.business.crm.models import Lead
from mailroom.business.helpdesk.models import Ticket
from mailroom.chatter.models import Follower, Message
from mailroom.core.models import AuditLog
from mailroom.incoming.models import InboundMail
from mailroom.routing import services
from mailroom.routing.models import Alias, AliasDomain
from tests.api.support import api_as, fields_named  # noqa: F401 - fixtures
from tests.conftest import PASSWORD, make_user
from tests.incoming.conftest import message


@pytest.fixture
def gus(globex):
    return make_user("gus", [globex], "Mail Manager")


@pytest.fixture
def globex_domain(globex, zone):
    services.clear_cache()
    domain = services.save_alias_domain(AliasDomain(company=globex, name="globex.test"),
                                        actor=None)
    yield domain
    services.clear_cache()


def new_alias(domain, local_part="deals", **fields) -> Alias:
    return Alias(company=domain.company, domain=domain, local_part=local_part,
                 record_type="crm.lead", **fields)


@pytest.mark.parametrize("defaults", [
    {"company": 1}, {"company_id": 1}, {"user": "ALICE"}, {"user_id": "ALICE"},
    {"partner": "ACME_PARTNER"}, {"partner_id": "ACME_PARTNER"},
])
def test_service_refuses_defaults_reaching_another_company(defaults, gus, globex_domain, acme,
                                                           alice, customer):
    ids = {"ALICE": alice.pk, "ACME_PARTNER": customer.pk, 1: acme.pk}
    defaults = {k: ids[v] for k, v in defaults.items()}
    with pytest.raises(ValidationError) as caught:
        services.save_alias(new_alias(globex_domain, defaults=defaults), actor=gus)
    assert "defaults" in caught.value.message_dict
    assert not Alias.objects.filter(local_part="deals").exists()


def test_a_member_of_the_company_may_be_preset(gus, globex_domain, charlie):
    alias = services.save_alias(new_alias(globex_domain, defaults={"user": charlie.pk}),
                                actor=gus)
    assert alias.defaults == {"user": charlie.pk}


def test_forced_thread_on_another_companys_record_is_refused(gus, globex_domain, lead):
    lead_type = ContentType.objects.get_for_model(Lead)
    with pytest.raises(ValidationError) as caught:
        services.save_alias(new_alias(globex_domain, thread_content_type=lead_type,
                                      thread_object_id=lead.pk), actor=gus)
    assert "thread_object_id" in caught.value.message_dict


def test_api_refuses_company_and_foreign_user_defaults(gus, globex_domain, acme, alice,
                                                      api_as):
    api = api_as(gus)
    base = {"domain_id": globex_domain.pk, "local_part": "deals", "record_type": "crm.lead"}
    for defaults in ({"company_id": acme.pk}, {"company": acme.pk}, {"user_id": alice.pk}):
        response = api.post("/api/v1/aliases", {**base, "defaults": defaults})
        assert response.status_code == 422, (defaults, response.content)
        assert fields_named(response) == ["defaults"]
    assert not Alias.objects.filter(local_part="deals").exists()


def test_form_refuses_company_default(client, gus, globex_domain, acme):
    assert client.login(username="gus", password=PASSWORD)
    response = client.post(reverse("admin:routing_alias_add"), {
        "domain": globex_domain.pk, "local_part": "deals", "company": globex_domain.company_id,
        "record_type": "crm.lead", "defaults": json.dumps({"company_id": acme.pk}),
        "thread_content_type": "", "thread_object_id": "", "parent_content_type": "",
        "parent_object_id": "", "contact_policy": "everyone", "bounce_message": "",
        "active": "on"})
    assert response.status_code == 200
    assert "company is always the alias" in str(response.context["adminform"].form.errors)
    assert not Alias.objects.filter(local_part="deals").exists()


def test_record_is_always_created_in_the_aliass_company(globex_domain, acme, globex, deliver):
    # stored before this rule existed (written around the service)
    Alias.objects.create(company=globex, domain=globex_domain, local_part="deals",
                         record_type="crm.lead", defaults={"company_id": acme.pk})
    services.clear_cache()
    mail = deliver(message(to="deals@globex.test"), to=("deals@globex.test",), company=globex)
    assert mail.decision == "created", mail.reason
    lead = Lead.objects.get(pk=mail.object_id)
    assert lead.company_id == globex.pk


def test_upgrade_refuses_saved_cross_company_aliases(globex_domain, acme, alice, globex):
    bad = Alias.objects.create(company=globex, domain=globex_domain, local_part="deals",
                               record_type="crm.lead", defaults={"user_id": alice.pk})
    good = Alias.objects.create(company=globex, domain=globex_domain, local_part="fine",
                                record_type="crm.lead", defaults={"priority": "urgent"})
    migration = importlib.import_module(
        "mailroom.routing.migrations.0002_refuse_cross_company_aliases")
    migration.refuse_unsafe(django_apps, None)
    bad.refresh_from_db()
    good.refresh_from_db()
    assert not bad.active and bad.status == Alias.Status.INVALID
    assert "no user with id" in bad.last_error
    assert bad.defaults == {"user_id": alice.pk}  # reported, not silently rewritten
    assert good.active and good.last_error == ""
    entry = AuditLog.objects.get(action="routing.alias.refused")
    assert entry.object_id == str(bad.pk) and entry.company_id == globex.pk


# the router's alias rule (moved from tests/router/test_router.py, which marked its module)
pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_mail_to_an_alias_creates_a_record_with_the_sender_as_contact_and_follower(deliver):
    mail = deliver(message())
    assert (mail.state, mail.decision, mail.rule) == ("done", D.CREATED, "post")
    lead = Lead.objects.get()
    assert lead.name == "Need 40 licences"
    assert lead.email_from == "grace@navy.example"
    assert lead.partner.name == "Grace Hopper"
    assert mail.record == lead
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert (posted.message_type, posted.direction) == ("email", "in")
    assert "we would like a quote" in posted.body_html
    assert Follower.objects.filter(object_id=lead.pk, partner=lead.partner).exists()
    rules = [step["rule"] for step in mail.trace]
    assert rules == ["duplicate", "command", "bounce", "loop", "thread", "alias", "fallback",
                     "security", "post"]


def test_alias_defaults_are_applied_and_support_creates_tickets(deliver, domain):
    from mailroom.routing.models import Alias
    from mailroom.routing.services import clear_cache

    Alias.objects.filter(domain=domain, local_part="support").update(
        defaults={"priority": "2"})
    clear_cache()
    deliver(message(to="support@acme.test", subject="Printer on fire"),
            to=["support@acme.test"])
    ticket = Ticket.objects.get()
    assert (ticket.name, ticket.priority, ticket.email) == (
        "Printer on fire", "2", "grace@navy.example")
