"""The campaign's audience: deduplicated by address, every exclusion counted with its reason,
each recipient's language chosen, and a crashed resolution redone without double rows."""

from __future__ import annotations

from mailroom.campaigns.engine import audience
from mailroom.campaigns.models import CampaignRecipient, Suppression
from tests.campaigns.test_engine import (
    campaign,
    fresh,
    make_list,
    person,
    subscribe,
    traces,
)


def test_dedupe_and_every_exclusion_reason_is_counted(acme, globex):
    news, offers, vip = (make_list(acme, n) for n in ("News", "Offers", "VIP"))
    ada = person(acme, "ada@client.example", "Ada Lovelace")
    subscribe(news, ada)
    subscribe(offers, ada)  # on two lists: one mail, one duplicate counted
    subscribe(news, person(acme, "bob@client.example"), status="unsubscribed")
    subscribe(news, person(acme, "cy@client.example"), status="bounced")
    subscribe(news, person(acme, "dee@client.example"), status="complained")
    subscribe(news, person(acme, "eve@client.example"))
    Suppression.objects.create(company=acme, email="eve@client.example", reason="manual")
    Suppression.objects.create(company=globex, email="ivy@client.example", reason="manual")
    subscribe(news, person(acme, "fay@client.example", blacklisted=True))
    gus = person(acme, "gus@client.example")
    subscribe(news, gus)
    subscribe(vip, gus, status="unsubscribed")  # on the excluded list, whatever its status
    subscribe(news, person(acme, "hal@client.example"), status="unconfirmed")
    subscribe(news, person(acme, "broken@client.example"), email="broken@@client.example")
    ivy = person(acme, "ivy@client.example")  # suppressed by another company only
    subscribe(news, ivy, status="unsubscribed")
    subscribe(offers, ivy)  # left one list of the campaign, still on the other: gets it
    subscribe(make_list(acme, "Other"), person(acme, "zed@client.example"))  # not targeted
    sent = campaign(acme, lists=[news, offers], exclude=[vip])
    before = audience.preview(sent)  # the editor's live count writes nothing
    assert not CampaignRecipient.objects.filter(campaign=sent).exists()

    audience.resolve(sent)

    sent = fresh(sent)
    assert sent.audience_done and sent.total == 2
    assert sent.exclusions == {"blacklisted": 1, "bounced": 1, "complained": 1, "duplicate": 1,
                               "excluded_list": 1, "invalid": 1, "suppressed": 1,
                               "unsubscribed": 1}
    rows = traces(sent)
    assert {e for e, t in rows.items() if t.status == "pending"} == {"ada@client.example",
                                                                    "ivy@client.example"}
    excluded = {e: t.exclusion for e, t in rows.items() if t.status == "excluded"}
    assert excluded == {"bob@client.example": "unsubscribed", "cy@client.example": "bounced",
                        "dee@client.example": "complained", "eve@client.example": "suppressed",
                        "fay@client.example": "blacklisted",
                        "gus@client.example": "excluded_list",
                        "broken@@client.example": "invalid"}
    assert all(rows[e].reason for e in excluded)
    assert before == {"total": sent.total, "exclusions": sent.exclusions}
    assert "hal@client.example" not in rows and "zed@client.example" not in rows
    assert rows["ada@client.example"].name == "Ada Lovelace"
    assert rows["ada@client.example"].partner_id == ada.pk


def test_each_recipient_gets_their_language_when_the_campaign_has_it(acme):
    news = make_list(acme, "News")
    for email, language in [("de@client.example", "de_DE"), ("at@client.example", "de_AT"),
                            ("fr@client.example", "fr_FR"), ("gb@client.example", "en_GB")]:
        subscribe(news, person(acme, email, language=language))
    sent = campaign(acme, lists=[news], translations=[("de_DE", "Neuigkeiten", "<p>Hallo</p>")])

    audience.resolve(sent)

    langs = {e: t.lang for e, t in traces(sent).items()}
    assert langs == {"de@client.example": "de_DE", "at@client.example": "de_DE",
                     "fr@client.example": "en_US", "gb@client.example": "en_US"}


def test_without_its_own_language_the_campaign_speaks_the_companys(acme):
    news = make_list(acme, "News")
    subscribe(news, person(acme, "jp@client.example", language="ja_JP"))
    sent = campaign(acme, lists=[news], lang="")  # acme writes in fr_FR

    audience.resolve(sent)

    assert traces(sent)["jp@client.example"].lang == "fr_FR"


def test_a_crashed_resolution_is_redone_without_double_rows(acme):
    news = make_list(acme, "News")
    for n in range(5):
        subscribe(news, person(acme, f"p{n}@client.example"))
    sent = campaign(acme, lists=[news])
    # a worker died after writing part of the audience: audience_done is still false
    CampaignRecipient.objects.create(campaign=sent, email="p0@client.example")
    CampaignRecipient.objects.create(campaign=sent, email="p1@client.example")

    audience.resolve(sent)

    assert CampaignRecipient.objects.filter(campaign=sent).count() == 5
    assert fresh(sent).total == 5
