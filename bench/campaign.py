"""bench/campaign — a campaign resolved, rendered and queued by the real worker step.

    ./scripts/bench campaign [--count N] [--pg | --database-url URL]
    (or: python -m bench.campaign …)

N contacts (default 20,000; the issue's target is 100,000) on a list, plus a few excluded
ones (unsubscribed, suppressed, on two lists); a campaign in the branded layout with two
placeholders, a translation and a tracked link, handed to the worker (PREPARING). A child
process — a worker as `mailroom worker` runs it — calls the `campaigns` step until the
campaign is SENDING; it reports recipients/s end to end (audience, render, outbox rows,
traces) and its peak RSS. Measured in the same run on the same database: `enqueue_many` of
the same pre-rendered mails (what queueing alone costs; the ratio is printed) and the old
`templating.services.send_mass` on a sample of records (the list's "Send email…" in the
request), and the list's "Send email…" on --mass leads handed to the worker as the page does
(the `templating.mass` step in a child process: the layout finished once per language,
chatter entries and outbox rows in batches). Target: >= 2,000 recipients/s on
this 2-core machine, SQLite and PostgreSQL, worker RSS <= 300 MB at 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.common import ROOT, print_table, self_peak_rss_mb

BODY = ('<h1>Spring news</h1><p>Hello {{ contact.first_name }},</p><p>Our <a '
        'href="https://acme.example/sale">spring sale</a> starts today: twenty percent off '
        'everything in the shop, this week only.</p><p>See you soon,<br>{{ company.name }}'
        '</p>')


def _django(database_url: str, data_dir: str) -> None:
    os.environ["MAILROOM_DATABASE_URL"] = database_url
    os.environ["MAILROOM_DATA_DIR"] = data_dir
    os.environ.setdefault("MAILROOM_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
    import django

    django.setup()


def seed(count: int) -> int:
    """The company, its contacts on a list, and the campaign; the campaign's id."""
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from mailroom.campaigns.models import (
        Campaign,
        CampaignTranslation,
        MailingList,
        Subscription,
        Suppression,
    )
    from mailroom.contacts.models import Partner
    from mailroom.core.models import Company
    from mailroom.outgoing.services import _insert_rows

    company = Company.objects.create(name="Acme Trading GmbH", email="hello@acme.example",
                                     street="Hauptstraße 5", city="Berlin", zip="10115",
                                     country="DE", language="en_US",
                                     website="https://acme.example")
    news = MailingList.objects.create(company=company, name="News")
    offers = MailingList.objects.create(company=company, name="Offers")
    now = timezone.now()
    extra = max(count // 100, 1)  # 1% each: on both lists, unsubscribed, suppressed
    for first in range(0, count + 2 * extra, 5000):
        last = min(first + 5000, count + 2 * extra)
        _insert_rows(Partner, [Partner(company=company, name=f"Person {n} Example",
                                       email=f"person{n}@client.example",
                                       language="de_DE" if n % 5 == 0 else "en_US",
                                       created_at=now)
                               for n in range(first, last)])
    ids = dict(Partner.objects.filter(company=company).values_list("email", "id"))
    rows = []
    for n in range(count + 2 * extra):
        email = f"person{n}@client.example"
        status = "unsubscribed" if count <= n < count + extra else "subscribed"
        rows.append(Subscription(company=company, mailing_list=news, partner_id=ids[email],
                                 email=email, status=status, created_at=now, updated_at=now))
        if n < extra:
            rows.append(Subscription(company=company, mailing_list=offers,
                                     partner_id=ids[email], email=email, status=status,
                                     created_at=now, updated_at=now))
        if len(rows) >= 5000:
            _insert_rows(Subscription, rows)
            rows = []
    _insert_rows(Subscription, rows)
    _insert_rows(Suppression, [Suppression(company=company, email=f"person{n}@client.example",
                                           reason="manual", created_at=now)
                               for n in range(count + extra, count + 2 * extra)])
    campaign = Campaign.objects.create(
        company=company, name="Spring news", subject="News for {{ contact.first_name }}",
        preview_text="Twenty percent off everything", email_from="Acme <news@acme.example>",
        body_html=BODY, layout="branded", lang="en_US", state=Campaign.State.PREPARING)
    campaign.lists.set([news, offers])
    CampaignTranslation.objects.create(campaign=campaign, lang="de_DE",
                                       subject="Neues für {{ contact.first_name }}",
                                       body_html=BODY.replace("Hello", "Hallo"))
    return campaign.pk


def child(campaign_id: int) -> dict:
    """A worker: the real step until the campaign is all queued."""
    from django.urls import get_resolver

    from mailroom.campaigns.engine.step import campaigns_step
    from mailroom.campaigns.models import Campaign

    started = time.perf_counter()
    get_resolver().url_patterns  # noqa: B018 - a worker loads the URL map once, at its first
    warm_up = time.perf_counter() - started  # mail with links; not part of any campaign
    started = time.perf_counter()
    passes = 0
    while campaigns_step("bench-worker"):
        passes += 1
    seconds = time.perf_counter() - started
    campaign = Campaign.objects.get(pk=campaign_id)
    return {"seconds": seconds, "queued": campaign.queued, "total": campaign.total,
            "state": campaign.state, "reason": campaign.state_reason, "passes": passes,
            "excluded": campaign.excluded, "peak_mb": self_peak_rss_mb(), "warm_up": warm_up}


def baseline(campaign_id: int, sample: int) -> tuple[int, float]:
    """`enqueue_many` of `sample` of the campaign's own rendered mails, 500 a call."""
    from django.db import transaction

    from mailroom.campaigns.models import Campaign
    from mailroom.outgoing.models import OutgoingMail
    from mailroom.outgoing.services import enqueue_many

    campaign = Campaign.objects.select_related("company").get(pk=campaign_id)
    mails = [{"email_from": m.email_from, "to": [m.recipients.all()[0].address],
              "subject": m.subject, "html": m.body_html, "text": m.body_text,
              "headers": m.headers, "purpose": "bulk", "reply_to": m.reply_to}
             for m in OutgoingMail.objects.filter(object_id=campaign_id)
             .prefetch_related("recipients").order_by("id")[:sample]]
    started = time.perf_counter()
    for first in range(0, len(mails), 500):
        with transaction.atomic():
            enqueue_many(company=campaign.company, mails=mails[first:first + 500])
    return len(mails), time.perf_counter() - started


def _lead_template():
    """The bench user and a lead template with the campaign's body (one per run)."""
    from mailroom.core.models import Company, User
    from mailroom.templating.models import EmailTemplate
    from mailroom.templating.services import save_template

    company = Company.objects.get(name="Acme Trading GmbH")
    user = User.objects.filter(username="bench").first()
    if user is None:
        user = User.objects.create_user("bench", email="bench@acme.example",
                                        is_superuser=True, is_staff=True,
                                        current_company=company)
        user.companies.add(company)
    template = EmailTemplate.objects.filter(company=company, name="Spring news").first()
    if template is None:
        template = save_template(EmailTemplate(
            company=company, name="Spring news", record_type="crm.lead",
            partner_to="{{ object.partner.id }}", subject="News for {{ object.partner.name }}",
            body_html=BODY.replace("contact.first_name", "object.partner.name")
            .replace("company.name", "object.company.name"), email_from="news@acme.example"),
            actor=user)
    return company, user, template


def _leads(company, count: int, offset: int = 0) -> list:
    from mailroom.business.crm.models import Lead
    from mailroom.contacts.models import Partner

    partners = list(Partner.objects.filter(company=company, is_blacklisted=False)
                    .exclude(email="").order_by("id")[offset:offset + count])
    return Lead.objects.bulk_create(Lead(company=company, name=f"Lead {n}", partner=p)
                                    for n, p in enumerate(partners))


def old_send_mass(count: int) -> tuple[int, float]:
    """The list action "Send email…" in the request: `send_mass` on `count` leads."""
    from mailroom.templating.services import send_mass

    company, user, template = _lead_template()
    leads = _leads(company, count)
    started = time.perf_counter()
    results = send_mass(leads, template, actor=user)
    seconds = time.perf_counter() - started
    errors = [r.error for r in results if r.error]
    assert not errors, errors[:3]
    return len(leads), seconds


def seed_mass(count: int, offset: int) -> int:
    """"Send email…" on `count` selected leads, handed to the worker as the page does."""
    from django.contrib.contenttypes.models import ContentType

    from mailroom.business.crm.models import Lead
    from mailroom.templating.mass_services import start_mass

    company, user, template = _lead_template()
    leads = _leads(company, count, offset)
    job = start_mass(template, ContentType.objects.get_for_model(Lead),
                     [lead.pk for lead in leads], actor=user, company=company,
                     batch="bench-mass")
    return job.pk


def child_mass(job_id: int) -> dict:
    """A worker running the real `templating.mass` step until the job is finished."""
    from django.urls import get_resolver

    from mailroom.templating.mass_engine import mass_step
    from mailroom.templating.mass_models import MassSend

    get_resolver().url_patterns  # noqa: B018 - as in child(): the URL map, once
    started = time.perf_counter()
    while mass_step("bench-worker"):
        pass
    seconds = time.perf_counter() - started
    job = MassSend.objects.get(pk=job_id)
    return {"seconds": seconds, "sent": job.sent, "skipped": job.skipped, "state": job.state,
            "reason": job.state_reason, "peak_mb": self_peak_rss_mb()}


def _child(flag: str, job_id: int) -> dict:
    from django.db import connections

    connections.close_all()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}/src:{ROOT}"}
    proc = subprocess.run([sys.executable, "-m", "bench.campaign", flag, str(job_id)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"the worker failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def _fresh_postgres() -> tuple[str, object]:
    from bench.outbound import Database

    database = Database("postgresql")
    return database.url, database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--database-url", help="an empty database to use instead")
    parser.add_argument("--sample", type=int, default=300, help="records for old send_mass")
    parser.add_argument("--mass", type=int, default=10_000,
                        help="leads for the list's Send email… in the worker")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mass-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.mass_child:
        _django(os.environ["MAILROOM_DATABASE_URL"], os.environ["MAILROOM_DATA_DIR"])
        print(json.dumps(child(args.child) if args.child else child_mass(args.mass_child)))
        return
    data_dir = tempfile.mkdtemp(prefix="mailroom-bench-campaign-")
    database = None
    url = args.database_url or f"sqlite:///{data_dir}/bench.sqlite3"
    if args.pg and not args.database_url:
        url, database = _fresh_postgres()
    try:
        run(url, data_dir, args)
    finally:
        if database is not None:
            database.drop()


def run(url: str, data_dir: str, args) -> None:
    _django(url, data_dir)
    started = time.perf_counter()
    campaign_id = seed(args.count)
    print(f"seeded {args.count:,} contacts in {time.perf_counter() - started:.1f} s",
          flush=True)
    from django.db import connections

    engine = _child("--child", campaign_id)
    if engine["state"] != "sending":
        raise SystemExit(f"the campaign ended {engine['state']}: {engine['reason']}")
    rate = engine["queued"] / engine["seconds"]
    sample, seconds = baseline(campaign_id, min(args.count, 20_000))
    floor = sample / seconds
    mass, mass_seconds = old_send_mass(args.sample)
    job_id = seed_mass(args.mass, args.sample)
    listed = _child("--mass-child", job_id)
    if listed["state"] != "done":
        raise SystemExit(f"the mass send ended {listed['state']}: {listed['reason']}")
    listed_rate = listed["sent"] / listed["seconds"]
    vendor = connections["default"].vendor
    rows = [
        (vendor, "campaign engine, worker step end to end", f"{engine['queued']:,}",
         f"{engine['seconds']:.1f}", f"{rate:,.0f}", f"{engine['peak_mb']:.0f}",
         f"{rate / floor:.2f}"),
        (vendor, "enqueue_many, same pre-rendered mails", f"{sample:,}", f"{seconds:.1f}",
         f"{floor:,.0f}", "", "1.00"),
        (vendor, "list Send email… in the worker (templating.mass)", f"{listed['sent']:,}",
         f"{listed['seconds']:.1f}", f"{listed_rate:,.0f}", f"{listed['peak_mb']:.0f}",
         f"{listed_rate / floor:.2f}"),
        (vendor, "old send_mass (templating), per record", f"{mass:,}", f"{mass_seconds:.1f}",
         f"{mass / mass_seconds:,.1f}", "", f"{mass / mass_seconds / floor:.3f}"),
    ]
    print(f"\nCampaign to {args.count:,} contacts ({engine['excluded']:,} more left out: "
          f"duplicates, unsubscribed, suppressed), branded layout, 2 languages, tracked link; "
          f"{engine['passes']} worker passes (the worker's one-time URL map load, "
          f"{engine['warm_up']:.1f} s, not counted). Target >= 2,000 recipients/s, worker RSS "
          f"<= 300 MB at 100,000.\n")
    print_table(rows, ("db", "run", "mails", "seconds", "per second", "worker peak RSS MB",
                       "vs enqueue_many"))


if __name__ == "__main__":
    main()
