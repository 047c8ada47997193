"""A/B tests: a sample gets A or B (half each), the others wait; when the test time is up
the variant with the better rate goes to everyone else — once, with the figures kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from mailroom.campaigns import campaign_services as cs
from mailroom.campaigns.engine import ab, step
from mailroom.campaigns.models import Campaign, CampaignRecipient
from mailroom.core.models import AuditLog
from mailroom.outgoing.models import OutgoingMail
from tests.campaigns.test_engine import campaign, fresh, make_list, person, run, subscribe

pytestmark = pytest.mark.django_db
State = Campaign.State


@pytest.fixture
def audience_of_forty(acme):
    news = make_list(acme, "News")
    for n in range(40):
        subscribe(news, person(acme, f"p{n:02}@client.example", f"Person {n}"))
    return news


def ab_campaign(acme, news, **fields):
    return campaign(acme, lists=[news], ab_test=True, ab_sample=25, ab_hours=4,
                    subject_b="Last chance, {{ contact.first_name }}", **fields)


def by_variant(sent) -> dict[str, int]:
    rows = CampaignRecipient.objects.filter(campaign=sent).values_list("variant", flat=True)
    return {v: list(rows).count(v) for v in set(rows)}


def test_the_sample_goes_out_and_the_rest_waits(acme, audience_of_forty):
    sent = ab_campaign(acme, audience_of_forty)
    assert run(sent) is True
    assert by_variant(sent) == {"a": 5, "b": 5, "w": 30}
    mails = OutgoingMail.objects.all()
    assert mails.count() == 10
    subjects = {m.subject.split(",")[0] for m in mails}
    assert subjects == {"News for Person", "Last chance"}
    waiting = fresh(sent)
    assert waiting.state == State.SENDING and "A/B test" in waiting.state_reason
    assert step.finish_sent() == 0  # the waiting 30 keep it from being done
    assert ab.decide_due() == 0  # not yet: four hours


def test_the_winner_by_open_rate_goes_to_everyone_else_once(acme, audience_of_forty):
    sent = ab_campaign(acme, audience_of_forty)
    run(sent)
    now = timezone.now()
    sample = CampaignRecipient.objects.filter(campaign=sent, variant__in=["a", "b"])
    sample.update(status=CampaignRecipient.Status.SENT)
    b_traces = list(sample.filter(variant="b").values_list("pk", flat=True))
    CampaignRecipient.objects.filter(pk__in=b_traces[:3]).update(opened_at=now)
    a_traces = list(sample.filter(variant="a").values_list("pk", flat=True))
    CampaignRecipient.objects.filter(pk__in=a_traces[:1]).update(opened_at=now)
    # a privacy proxy opening every A mail is not a person: A still has one open
    CampaignRecipient.objects.filter(pk__in=a_traces[1:]).update(opened_at=now,
                                                                 machine_open=True)

    later = now + timedelta(hours=4, minutes=1)
    assert ab.decide_due(later) == 1
    assert ab.decide_due(later) == 0  # decided once
    decided = fresh(sent)
    assert decided.ab_winner == "b" and decided.state == State.PREPARING
    assert "B won with 60.0% opens (3 of 5) against 20.0% for A" in decided.state_reason
    assert decided.ab_figures["b"]["opened"] == 3
    assert AuditLog.objects.filter(action="campaigns.campaign.ab_winner").exists()
    assert by_variant(sent) == {"a": 5, "b": 35}

    run(decided)
    assert OutgoingMail.objects.count() == 40  # each address once
    rest = OutgoingMail.objects.exclude(
        pk__in=CampaignRecipient.objects.filter(pk__in=a_traces + b_traces)
        .values("mail_id"))
    assert all(m.subject.startswith("Last chance") for m in rest)
    assert fresh(sent).state == State.SENDING


def test_a_tie_keeps_a_and_a_paused_test_is_not_decided(acme, audience_of_forty, mia):
    sent = ab_campaign(acme, audience_of_forty)
    run(sent)
    later = timezone.now() + timedelta(hours=5)
    paused = cs.pause(fresh(sent), actor=mia)
    assert ab.decide_due(later) == 0 and fresh(paused).ab_winner == ""
    cs.resume(paused, actor=mia)
    run(sent)  # the sample is queued already: back to waiting
    assert fresh(sent).state == State.SENDING
    assert ab.decide_due(later) == 1 and fresh(sent).ab_winner == "a"


def test_a_test_needs_a_different_b_and_sensible_figures(acme, mia, newsletter):
    from mailroom.routing.models import AliasDomain

    AliasDomain.objects.create(company=acme, name="news.acme.example")
    draft = Campaign(company=acme, name="x", subject="Hi", email_from="a@news.acme.example",
                     body_html="<p>x</p>", ab_test=True, ab_sample=95, ab_hours=0,
                     track_opens=False)
    with pytest.raises(ValidationError) as caught:
        cs.save_campaign(draft, actor=mia)
    assert set(caught.value.message_dict) == {"subject_b", "ab_sample", "ab_hours",
                                              "ab_metric"}


def test_the_campaign_page_shows_both_variants_and_the_winner(acme, audience_of_forty,
                                                              client_for, mia):
    sent = ab_campaign(acme, audience_of_forty)
    run(sent)
    page = client_for(mia).get(f"/campaigns/c/{sent.pk}/").content.decode()
    assert 'id="campaign-ab"' in page and "after 4 h goes to everyone else" in page
    ab.decide(fresh(sent))
    page = client_for(mia).get(f"/campaigns/c/{sent.pk}/").content.decode()
    assert '<b>A</b> · winner' in page and "went to everyone else" in page


def test_the_editor_offers_the_test(client_for, mia):
    page = client_for(mia).get("/campaigns/campaign/add/").content.decode()
    for name in ("ab_test", "subject_b", "body_html_b", "ab_sample", "ab_metric", "ab_hours"):
        assert f'name="{name}"' in page
