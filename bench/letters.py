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
import tracemalloc
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
        invoices.append(invoice)
    return user, invoices


def measure(label: str, func, count: int) -> tuple:
    tracemalloc.start()
    started = time.perf_counter()
    func()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return label, count, f"{seconds:.2f}", f"{count / seconds:.1f}", f"{peak / 2**20:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    user, invoices = setup(args.count)
    from django.db.models import Count

    from mailroom.documents.pdf import render_pdf
    from mailroom.letters import services
    from mailroom.letters.layout.generator import LetterSpec, build
    from mailroom.letters.models import Letter
    from mailroom.letters.tasks import letters_step

    render_pdf(invoices[0])  # fonts and stylesheets loaded once, outside every row
    pdfs: list[bytes] = []
    rows = [measure("documents: invoice PDF alone (floor)",
                    lambda: pdfs.extend(render_pdf(i).content for i in invoices), len(invoices))]
    spec = dict(sender_name="Acme Trading GmbH", sender_lines=["Hauptstraße 5", "10115 Berlin"],
                recipient_lines=["Kunde GmbH", "Ring 1", "80331 München"],
                language="de", standard="din5008b", colour=False, duplex=True,
                cover_page=True)
    rows.append(measure("layout alone: cover + merge + normalise",
                        lambda: [build(LetterSpec(**spec, documents=[pdf])) for pdf in pdfs],
                        len(pdfs)))
    options = services.LetterOptions(cover_page=True, duplex=True)
    rows.append(measure("Send by Post (shipped path)",
                        lambda: [services.send_by_post(i, actor=user, options=options)
                                 for i in invoices], len(invoices)))

    def submit_all():
        while letters_step("bench"):
            pass

    rows.append(measure("worker: submit to the local print room", submit_all, len(invoices)))
    states = dict(Letter.objects.values_list("state").annotate(n=Count("pk")))
    print(f"\n'Send by Post' for {len(invoices)} invoices (8 lines each), cover page, duplex; "
          f"target >= 10 letters/s. Letters by state after the run: {states}\n")
    print_table(rows, ("run", "letters", "seconds", "letters/s", "peak traced MB"))
    print(f"\npeak RSS of the process: {self_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
