"""A campaign sent to segments: the contacts matching now join the lists' subscribers, one
mail per address across both, the same exclusions apply, and a segment that can no longer be
read fails the campaign with its reason."""

from __future__ import annotations

from mailroom.campaigns.engine import audience, step
from mailroom.campaigns.models import Campaign, Segment, Suppression
from tests.campaigns.test_engine import campaign, fresh, make_list, person, subscribe, traces


def segment(company, rules, name="Belgians") -> Segment:
    return Segment.objects.create(company=company, name=name, rules=rules)


def test_segment_contacts_join_the_lists_once_each(acme, globex):
    news, vip = make_list(acme, "News"), make_list(acme, "VIP")
    ada = person(acme, "Ada@Client.example", "Ada")
    ada.country = "BE"
    ada.save()
    subscribe(news, ada)  # on the list and in the segment: one mail
    for email, country, blacklisted in (("bo@client.example", "BE", False),
                                        ("cy@client.example", "BE", True),
                                        ("dee@client.example", "BE", False),
                                        ("eve@client.example", "BE", False),
                                        ("fay@client.example", "FR", False)):
        contact = person(acme, email, blacklisted=blacklisted)
        contact.country = country
        contact.save()
    Suppression.objects.create(company=acme, email="dee@client.example", reason="manual")
    subscribe(vip, person(acme, "eve@client.example"))  # a second contact, same address
    other = person(globex, "gil@client.example")
    other.country = "BE"
    other.save()
    sent = campaign(acme, lists=[news], exclude=[vip])
    sent.segments.set([segment(acme, [{"field": "country", "op": "in", "value": ["BE"]}])])
    assert audience.preview(sent)["total"] == 2

    audience.resolve(sent)

    sent = fresh(sent)
    rows = traces(sent)
    assert {e for e, t in rows.items() if t.status == "pending"} == {"ada@client.example",
                                                                    "bo@client.example"}
    assert sent.exclusions == {"blacklisted": 1, "duplicate": 1, "excluded_list": 1,
                               "suppressed": 1}
    assert rows["bo@client.example"].subscription_id is None
    assert "gil@client.example" not in rows  # another company's contact never


def test_a_segment_that_cannot_be_read_fails_the_campaign(acme):
    sent = campaign(acme)
    sent.segments.set([segment(acme, [{"field": "list", "op": "subscribed", "value": 999999}],
                               name="Gone")])
    Campaign.objects.filter(pk=sent.pk).update(lease_owner="me",
                                               lease_expires_at="2999-01-01T00:00:00Z")
    assert step.process(sent.pk, "me") is True
    failed = fresh(sent)
    assert failed.state == Campaign.State.FAILED
    assert "cannot be sent" in failed.state_reason and "Condition 1" in failed.state_reason
