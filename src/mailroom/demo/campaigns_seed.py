"""The demo's campaigns: two public lists with their subscribers and consent, a segment, one
suppressed address, a draft with a French translation, and a campaign sent on the first
start — queued here through the real engine, sent by the worker to the mail catcher, so its
page fills with real figures as soon as someone opens a caught mail (the pixel) or clicks.
"""

from __future__ import annotations

from mailroom.campaigns import campaign_services, segments
from mailroom.campaigns import services as list_services
from mailroom.campaigns.engine import step
from mailroom.campaigns.models import Campaign, MailingList, Segment, Subscription
from mailroom.campaigns.suppression import suppress
from mailroom.contacts.models import Partner
from mailroom.demo import data

OVERRIDE = ("Demo data: the .example domains publish no DNS, so SPF, DKIM and DMARC cannot "
            "pass; every mail goes to the local mail catcher.")
BODY = """<h1>Hello {{ contact.first_name }},</h1>
<p>Our new customer portal is open: your quotations, invoices and tickets in one place,
on your phone too.</p>
<p><a href="https://mailroom-demo.example/portal">Open the portal</a></p>
<p>Questions? Just reply to this mail.</p>
<p>The {{ company.name }} team</p>"""
BODY_FR = """<h1>Bonjour {{ contact.first_name }},</h1>
<p>Notre nouvel espace client est ouvert : vos devis, factures et tickets au même endroit.</p>
<p><a href="https://mailroom-demo.example/portal">Ouvrir l'espace client</a></p>
<p>L'équipe {{ company.name }}</p>"""


def seed_campaigns(company, actor) -> None:
    sender = f"{company.name} <news@{data.DEMO_DOMAIN}>"
    newsletter = list_services.save_list(MailingList(
        company=company, name="Newsletter", public=True,
        description="Product news and tips, once a month."), actor=actor)
    events = list_services.save_list(MailingList(
        company=company, name="Events and webinars", public=True, double_opt_in=True,
        description="Invitations to our events."), actor=actor)
    people = list(Partner.objects.filter(company=company, kind=Partner.Kind.PERSON)
                  .exclude(email="").order_by("pk"))
    for index, person in enumerate(people):
        list_services.subscribe(newsletter, person, actor=actor,
                                source=Subscription.Source.FORM,
                                consent_how="Signed up on the website's footer form",
                                consent_ip=f"198.51.100.{10 + index}")
        if index % 3 == 0:
            list_services.subscribe(events, person, actor=actor,
                                    source=Subscription.Source.IMPORT,
                                    consent_how="Registered at the Geneva trade fair 2026")
    if len(people) > 3:  # one person left, one asked never to be mailed again
        list_services.unsubscribe(Subscription.objects.get(mailing_list=newsletter,
                                                           partner=people[1]), actor=actor,
                                  reason="Too many mails")
        suppress(company, people[2].email, "manual", actor=actor,
                 note="Asked by phone never to receive marketing mail again.")
    swiss = segments.save_segment(Segment(
        company=company, name="Customers in Switzerland",
        description="Contacts in Switzerland with an invoice", rules=[
            {"field": "country", "op": "in", "value": ["CH"]},
            {"field": "record:invoicing.invoice", "op": "has", "value": {}}]), actor=actor)
    draft = campaign_services.save_campaign(Campaign(
        company=company, name="Autumn product news", subject="What's new this autumn",
        preview_text="Three features our customers asked for", email_from=sender,
        body_html="<p>Hello {{ contact.first_name }},</p><p>Here is what is new…</p>",
        lang="en_GB"), actor=actor, lists=[newsletter])
    draft.segments.add(swiss)
    welcome = campaign_services.save_campaign(Campaign(
        company=company, name="New customer portal", subject="Our customer portal is open",
        preview_text="Quotations, invoices and tickets in one place", email_from=sender,
        body_html=BODY, lang="en_GB", deliverability_override=OVERRIDE), actor=actor,
        lists=[newsletter], exclude_lists=[])
    campaign_services.save_translation(welcome, "fr_FR",
                                       subject="Notre espace client est ouvert",
                                       preview_text="Devis, factures et tickets au même endroit",
                                       body_html=BODY_FR, actor=actor)
    campaign_services.send_now(welcome, actor=actor)
    owner = "demo-seed"
    if step.claim(owner) == welcome.pk:  # queued now: the worker sends it on the first start
        step.process(welcome.pk, owner)
