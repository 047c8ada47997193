"""Segments: each kind of condition picks exactly the right contacts, all/any combine them,
broken conditions are refused with their number, and the services guard who and when."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from mailroom.business.crm.models import Lead
from mailroom.business.invoicing.models import Invoice
from mailroom.business.recruitment.models import Applicant, JobPosition
from mailroom.campaigns import segments, services
from mailroom.campaigns.campaign_models import Campaign, Segment
from mailroom.campaigns.models import MailingList, Subscription
from mailroom.contacts.models import Partner, PartnerTag
from mailroom.core.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(acme, globex):
    def make(name, email, **extra):
        return Partner.objects.create(company=acme, name=name, email=email, **extra)

    found = {
        "ada": make("Ada", "ada@client.example", country="BE", language="fr_FR"),
        "bea": make("Bea", "bea@other.example", country="FR", language="en_US"),
        "cyd": make("Cyd Corp", "info@cyd.example", kind=Partner.Kind.ORGANISATION,
                    country="DE"),
        "dan": make("Dan", "dan@client.example", country="BE",
                    created_at=timezone.now() - timedelta(days=200)),
        "nomail": make("No Mail", "", country="BE"),
    }
    Partner.objects.create(company=globex, name="Ada elsewhere", email="ada@client.example",
                           country="BE")
    return found


def names(rules, company, match="all"):
    return sorted(p.name for p in segments.matching(rules, match, company.pk))


def test_contact_fields_pick_exactly_the_matching_contacts(acme, people):
    assert names([{"field": "name", "op": "contains", "value": "corp"}], acme) == ["Cyd Corp"]
    assert names([{"field": "email", "op": "contains", "value": "CLIENT"}], acme) == [
        "Ada", "Dan"]
    assert names([{"field": "email", "op": "domain_is", "value": "@Other.example"}],
                 acme) == ["Bea"]
    # the contact without an address and globex's Ada are never in
    assert names([{"field": "country", "op": "in", "value": ["BE", "DE"]}], acme) == [
        "Ada", "Cyd Corp", "Dan"]
    assert names([{"field": "language", "op": "is", "value": "fr_FR"}], acme) == ["Ada"]
    assert names([{"field": "kind", "op": "is", "value": "organisation"}], acme) == [
        "Cyd Corp"]
    assert names([{"field": "created", "op": "last_days", "value": 30}], acme) == [
        "Ada", "Bea", "Cyd Corp"]


def test_tags(acme, globex, people):
    vip = PartnerTag.objects.create(company=acme, name="VIP")
    people["bea"].tags.add(vip)
    assert names([{"field": "tag", "op": "has", "value": vip.pk}], acme) == ["Bea"]
    assert names([{"field": "tag", "op": "has_not", "value": vip.pk}], acme) == [
        "Ada", "Cyd Corp", "Dan"]
    theirs = PartnerTag.objects.create(company=globex, name="VIP")
    with pytest.raises(ValidationError, match="Condition 1: The tag chosen no longer exists"):
        segments.validate([{"field": "tag", "op": "has", "value": theirs.pk}], acme.pk)


def test_list_membership_counts_only_subscribed(acme, people, newsletter, globex_list, mia):
    services.subscribe(newsletter, people["ada"], actor=mia)
    services.subscribe(newsletter, people["bea"], actor=mia)
    services.unsubscribe(Subscription.objects.get(partner=people["bea"]), actor=mia)
    Subscription.objects.create(company=acme, mailing_list=newsletter, partner=people["dan"],
                                email="dan@client.example",
                                status=Subscription.Status.UNCONFIRMED)
    assert names([{"field": "list", "op": "subscribed", "value": newsletter.pk}], acme) == [
        "Ada"]
    assert names([{"field": "list", "op": "not_subscribed", "value": newsletter.pk}],
                 acme) == ["Bea", "Cyd Corp", "Dan"]
    with pytest.raises(ValidationError, match="mailing list chosen no longer exists"):
        segments.validate([{"field": "list", "op": "subscribed", "value": globex_list.pk}],
                          acme.pk)


def test_business_records_through_the_registry(acme, globex, people):
    old = timezone.now() - timedelta(days=120)
    Invoice.objects.create(company=acme, partner=people["ada"], due_date=timezone.localdate())
    Invoice.objects.create(company=acme, partner=people["bea"], created_at=old,
                           due_date=timezone.localdate())
    Lead.objects.create(company=acme, name="Deal", partner=people["bea"], stage="won")
    Lead.objects.create(company=acme, name="Other", partner=people["cyd"], stage="new")
    job = JobPosition.objects.create(company=acme, name="Welder")
    other_job = JobPosition.objects.create(company=acme, name="Cook")
    Applicant.objects.create(company=acme, partner=people["dan"], job=job)
    Applicant.objects.create(company=acme, partner=people["ada"], job=other_job)

    recent = {"field": "record:invoicing.invoice", "op": "has", "value": {"days": 90}}
    assert names([recent], acme) == ["Ada"]
    assert names([{**recent, "value": {}}], acme) == ["Ada", "Bea"]
    assert names([{**recent, "op": "has_not"}], acme) == ["Bea", "Cyd Corp", "Dan"]
    won = {"field": "record:crm.lead", "op": "has", "value": {"where": "stage",
                                                              "equals": "won"}}
    assert names([won], acme) == ["Bea"]
    welder = {"field": "record:recruitment.applicant", "op": "has",
              "value": {"where": "job", "equals": str(job.pk)}}
    assert names([welder], acme) == ["Dan"]
    # offered: types whose model points at a contact, with their simple fields
    offered = segments.record_types_with_partner()
    assert {"invoicing.invoice", "crm.lead", "recruitment.applicant"} <= set(offered)
    assert "contacts.partner" not in offered
    assert {"stage": "choice", "job": "fk", "created_at": "date"}.items() <= {
        n: f.kind for n, f in segments.record_filters(Applicant).items()}.items()
    # another company's job is neither offered nor accepted
    theirs = JobPosition.objects.create(company=globex, name="Spy")
    assert str(theirs.pk) not in dict(segments.record_filters(Applicant)["job"].options(acme.pk))
    with pytest.raises(ValidationError, match="Condition 1: The job position chosen no longer"):
        segments.validate([{**welder, "value": {"where": "job", "equals": theirs.pk}}], acme.pk)


def test_all_and_any(acme, people):
    rules = [{"field": "country", "op": "in", "value": ["BE"]},
             {"field": "language", "op": "is", "value": "fr_FR"}]
    assert names(rules, acme, "all") == ["Ada"]
    assert names(rules, acme, "any") == ["Ada", "Dan"]


def test_invalid_rules_are_refused_with_the_condition_number(acme, people):
    with pytest.raises(ValidationError) as caught:
        segments.validate([
            {"field": "country", "op": "in", "value": ["BE"]},
            {"field": "record:nowhere.thing", "op": "has", "value": {}},
            {"field": "created", "op": "last_days", "value": "soon"},
            {"field": "shoe_size", "op": "is", "value": 42},
        ], acme.pk)
    assert caught.value.messages == [
        "Condition 2: The record type 'nowhere.thing' no longer exists.",
        "Condition 3: Added: give a number of days.",
        "Condition 4: Choose what to look at (unknown field 'shoe_size').",
    ]
    with pytest.raises(ValidationError, match="Add at least one condition"):
        segments.validate([], acme.pk)
    with pytest.raises(ValidationError, match="stage"):
        segments.validate([{"field": "record:crm.lead", "op": "has",
                            "value": {"where": "stage", "equals": "bribed"}}], acme.pk)


def test_a_stored_rule_that_no_longer_fits_is_reported_not_crashed_on(acme, people, mia):
    segment = Segment.objects.create(company=acme, name="Old", rules=[
        {"field": "record:gone.model", "op": "has", "value": {}}])
    with pytest.raises(ValidationError, match="Condition 1: The record type 'gone.model'"):
        segments.resolve(segment)


def test_count_and_preview(acme, people, mia):
    segment = segments.save_segment(Segment(company=acme, name="Belgians", rules=[
        {"field": "country", "op": "in", "value": ["be"]}]), actor=mia)
    assert segment.rules == [{"field": "country", "op": "in", "value": ["BE"]}]
    assert segments.count(segment) == 2
    assert segments.count(segment.rules, acme.pk) == 2
    assert [p.name for p in segments.preview(segment)] == ["Ada", "Dan"]
    assert [p.name for p in segments.preview(segment.rules, acme.pk, size=1)] == ["Ada"]


def test_save_is_for_mail_managers_and_audited(acme, globex, people, mia, bob, gina):
    rules = [{"field": "name", "op": "contains", "value": "a"}]
    with pytest.raises(PermissionDenied):
        segments.save_segment(Segment(company=acme, name="X", rules=rules), actor=bob)
    with pytest.raises(PermissionDenied):
        segments.save_segment(Segment(company=acme, name="X", rules=rules), actor=gina)
    segment = segments.save_segment(Segment(company=acme, name="X", rules=rules), actor=mia)
    assert AuditLog.objects.filter(action="campaigns.segment.create").count() == 1
    with pytest.raises(ValidationError, match="already has a segment"):
        segments.save_segment(Segment(company=acme, name="X", rules=rules), actor=mia)
    segment.rules = [*rules, {"field": "tag", "op": "has", "value": "999999"}]
    with pytest.raises(ValidationError, match="Condition 2"):
        segments.save_segment(segment, actor=mia)


def test_delete_is_refused_while_a_waiting_campaign_uses_it(acme, people, mia):
    segment = segments.save_segment(Segment(company=acme, name="Belgians", rules=[
        {"field": "country", "op": "in", "value": ["BE"]}]), actor=mia)
    campaign = Campaign.objects.create(company=acme, name="Spring sale", subject="Hi",
                                       email_from="news@acme.test",
                                       state=Campaign.State.SCHEDULED)
    campaign.segments.add(segment)
    with pytest.raises(ValidationError, match="“Spring sale” \\(scheduled\\)"):
        segments.delete_segment(segment, actor=mia)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.DONE)
    segments.delete_segment(segment, actor=mia)
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert AuditLog.objects.filter(action="campaigns.segment.delete").exists()


def test_an_unused_list_id_is_refused(acme, people):
    with pytest.raises(ValidationError, match="Choose mailing list"):
        segments.validate([{"field": "list", "op": "subscribed", "value": ""}], acme.pk)
    assert MailingList.objects.count() == 0
