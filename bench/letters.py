"""bench/letters — "Send by Post" for 200 invoices, end to end, and the print room's batches.

    ./scripts/bench letters            (or: python -m bench.letters [--count N])

The path a user really takes: `letters.services.send_by_post` for each invoice (the invoice's
own PDF from the documents app, the cover page with the address in the envelope window,
merge, normalisation onto the paper, the final PDF stored, the chatter note), then the worker's
`letters` step submitting every queued letter to the local print room (today's batch PDF with
its cover sheet). Baselines measured in the same run: the documents app rendering the same
invoices' PDFs alone (what any letter costs at least), and the layout generator alone on
already-rendered PDFs. Target from the issue: ≥ 10 letters/s generated on this machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from decimal import Decimal

from bench.common import print_table, self_peak_rss_mb


def setup(count: int):
    data = tempfile.mkdtemp(prefix="mailroom-bench-letters-")
    os.environ["MAILROOM_DATA_DIR"] = data
    os.environ["MAILROOM_DATABASE_URL"] = f"sqlite:///{data}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from mailroom.business.invoicing import services as invoicing
    from mailroom.business.invoicing.models import Invoice
    from mailroom.contacts.models import Partner
    from mailroom.core.models import Company, User

    company = Company.objects.create(name="Acme Trading GmbH", email="hello@acme.example",
                                     street="Hauptstraße 5", city="Berlin", zip="10115",
                                     country="DE", language="de_DE", currency="EUR")
    user = User.objects.create_user("clerk", email="clerk@acme.example", is_superuser=True,
                                    is_staff=True,
                                    current_company=company)
    user.companies.add(company)
    invoices = []
    for n in range(count):
        partner = Partner.objects.create(company=company, name=f"Kunde {n} GmbH",
                                         email=f"k{n}@kunde.example", street=f"Ring {n}",
                                         city="München", zip="80331", country="DE")
        invoice = invoicing.save_invoice(Invoice(company=company, partner=partner, user=user),
                                         actor=user)
        invoice = invoicing.set_lines(invoice, [
            {"description": f"Position {line}", "quantity": Decimal("2"),
             "price_unit": Decimal("49.90")} for line in range(8)], actor=user)
        invoices.append(invoicing.post_invoice(invoice, actor=user))
    return user, invoices


def measure(label: str, func, count: int) -> tuple:
    started = time.perf_counter()
    func()
    seconds = time.perf_counter() - started
    return (label, count, f"{seconds:.2f}", f"{count / seconds:.1f}",
            f"{self_peak_rss_mb():.0f}", f"{children_peak_rss_mb():.0f}")


def children_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def mass_through_the_list(user, invoices, chunk: int) -> None:
    """What the list action "Send by post…" does: the page, then one htmx POST per chunk
    (each renders its letters on every core and stores them)."""
    import uuid

    from django.contrib.contenttypes.models import ContentType
    from django.test import Client
    from django.urls import reverse

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    content_type = ContentType.objects.get_for_model(invoices[0])
    url = reverse("letters:send_many", args=[content_type.pk])
    ids = ",".join(str(invoice.pk) for invoice in invoices)
    data = {"ids": ids, "batch": uuid.uuid4().hex, "postage": "standard", "duplex": "on",
            "cover_page": "on"}
    for offset in range(0, len(invoices), chunk):
        response = client.post(url, {**data, "offset": str(offset)}, HTTP_HX_REQUEST="true",
                               secure=True)
        assert response.status_code == 200, response.content[:500]
        assert b"Sending" in response.content or b"Done" in response.content, response.headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    renderers = int(os.environ.get("MAILROOM_LETTER_RENDERERS", "") or min(os.cpu_count() or 1, 4))
    user, invoices = setup(args.count * 2 + renderers)
    one_by_one = invoices[:args.count]
    listed = invoices[args.count:args.count * 2]
    warm_up = invoices[args.count * 2:]
    from django.db.models import Count

    from mailroom.documents.pdf import render_pdf
    from mailroom.letters import render_pool, services, views
    from mailroom.letters.layout.generator import LetterSpec, build
    from mailroom.letters.models import Letter
    from mailroom.letters.tasks import letters_step

    render_pdf(invoices[0])  # fonts and stylesheets loaded once, outside every row
    pdfs: list[bytes] = []
    rows = [measure("documents: invoice PDF alone, one process (floor)",
                    lambda: pdfs.extend(render_pdf(i).content for i in one_by_one),
                    len(one_by_one))]
    spec = dict(sender_name="Acme Trading GmbH", sender_lines=["Hauptstraße 5", "10115 Berlin"],
                recipient_lines=["Kunde GmbH", "Ring 1", "80331 München"],
                language="de", standard="din5008b", colour=False, duplex=True,
                cover_page=True)
    rows.append(measure("layout alone: cover + merge + normalise",
                        lambda: [build(LetterSpec(**spec, documents=[pdf])) for pdf in pdfs],
                        len(pdfs)))
    options = services.LetterOptions(cover_page=True, duplex=True)
    rows.append(measure("Send by Post, one invoice at a time (the button)",
                        lambda: [services.send_by_post(i, actor=user, options=options)
                                 for i in one_by_one], len(one_by_one)))
    # the pool's processes start on first use, as in a web process that has sent before
    services.send_many_by_post(warm_up, actor=user, options=options)
    rows.append(measure(f"list action 'Send by post…' ({render_pool.size()} renderers, "
                        f"htmx chunks of {views.CHUNK})",
                        lambda: mass_through_the_list(user, listed, views.CHUNK), len(listed)))

    def submit_all():
        while letters_step("bench"):
            pass

    queued = Letter.objects.filter(state="queued").count()
    rows.append(measure("worker: submit to the local print room", submit_all, queued))
    render_pool.shutdown()
    states = dict(Letter.objects.values_list("state").annotate(n=Count("pk")))
    print(f"\n'Send by Post' for {args.count} invoices (8 lines each) one at a time, then "
          f"{args.count} others through the list action; cover page, duplex; target >= 10 "
          f"letters/s. Letters by state after the run: {states}\n")
    print_table(rows, ("run", "letters", "seconds", "letters/s", "peak RSS MB (this process)",
                       "peak RSS MB (one renderer)"))


if __name__ == "__main__":
    main()
