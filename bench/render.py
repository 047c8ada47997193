"""Template rendering, measured: renders per second of a realistic templated mail, and the
cost of a quotation PDF.

    ./scripts/bench render        (about a minute; BENCH_SECONDS to change)

One quotation with 10 lines for a German customer, rendered with the predefined "Quotation:
send to customer" template: language choice, sandboxed Jinja2 for subject and body, the
branded layout, CSS inlined with css-inline, absolute links and the text/plain alternative.
Cold = every render compiles its template (a unique source each time); warm = compiled once.
Baselines measured in the same run: the bare sandboxed Jinja2 render of the same body, and
html2text for the text alternative. Then WeasyPrint's quotation PDF, first and warm.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))


def rate(func, seconds: float = SECONDS) -> float:
    func()  # warm-up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        func()
        count += 1
    return count / (time.perf_counter() - started)


def setup():
    data = tempfile.mkdtemp(prefix="mailroom-bench-render-")
    os.environ["MAILROOM_DATA_DIR"] = data
    os.environ["MAILROOM_DATABASE_URL"] = f"sqlite:///{data}/bench.sqlite3"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from mailroom.business.sales import services as sales
    from mailroom.business.sales.models import Quotation, Tax
    from mailroom.contacts.models import Partner
    from mailroom.core.models import Company, User

    company = Company.objects.create(name="Acme Bench GmbH", email="hello@acme.example",
                                     street="Hauptstraße 1", city="Berlin", zip="10115",
                                     country="DE", language="en_US", currency="EUR",
                                     website="https://acme.example")
    user = User.objects.create_user("seller", email="seller@acme.example", first_name="Sam",
                                    last_name="Seller", is_superuser=True)
    customer = Partner.objects.create(company=company, name="Grete Müller",
                                      email="grete@kunde.example", language="de_DE")
    tax = Tax.objects.create(company=company, name="MwSt. 19 %", percent=Decimal("19"))
    quotation = sales.save_quotation(Quotation(company=company, partner=customer, user=user),
                                     actor=user)
    quotation = sales.set_lines(quotation, [
        {"description": f"Widget model {n} — premium finish", "quantity": n + 1,
         "price_unit": Decimal("123.45") * (n + 1), "tax_ids": [tax.pk]} for n in range(10)],
        actor=user)
    return quotation, user


def main() -> None:
    quotation, user = setup()
    import html2text

    from mailroom.lib.html_text import html_to_plain
    from mailroom.lib.sandbox import compile_template
    from mailroom.templating.actions import default_template
    from mailroom.templating.context import build_context
    from mailroom.templating.rendering import render_template

    template = default_template(quotation.company, "send_quotation")
    template.attach_document = False  # the PDF is measured on its own below
    body = template.translations.get(lang="de_DE").body_html
    rows = []

    warm = rate(lambda: render_template(template, quotation, user=user, with_attachments=False))
    english = rate(lambda: render_template(template, quotation, user=user, lang="en_US",
                                           with_attachments=False))
    source, counter = template.body_html, [0]

    def cold() -> None:  # the company language, with a never-seen-before source each time
        counter[0] += 1
        template.body_html = source + f"{{# {counter[0]} #}}"
        render_template(template, quotation, user=user, lang="en_US", with_attachments=False)

    cold_rate = rate(cold)
    template.body_html = source
    context = build_context(quotation, user=user)
    compiled = compile_template(body, name="bench", field="body")
    jinja = rate(lambda: compiled.render(context, locale="de_DE", timezone="Europe/Berlin"))
    html = render_template(template, quotation, user=user, with_attachments=False).html
    ours = rate(lambda: html_to_plain(html))
    theirs = rate(lambda: html2text.html2text(html))
    rows += [
        ("full render, warm (language, subject, body, layout, CSS inlined, text)",
         f"{warm:,.0f}/s", f"{1000 / warm:.2f} ms"),
        ("full render, warm, company language (no translation lookup)", f"{english:,.0f}/s",
         f"{1000 / english:.2f} ms"),
        ("full render, cold (body compiled every time)", f"{cold_rate:,.0f}/s",
         f"{1000 / cold_rate:.2f} ms"),
        ("baseline: sandboxed Jinja2 body render only", f"{jinja:,.0f}/s",
         f"full render = {jinja / warm:.1f}× its cost"),
        ("text alternative: lib.html_text", f"{ours:,.0f}/s", f"×{ours / theirs:.1f} html2text"),
        ("text alternative: html2text (baseline)", f"{theirs:,.0f}/s", ""),
        ("size of the final HTML", f"{len(html):,} chars", ""),
    ]
    from mailroom.documents.pdf import render_pdf

    started = time.perf_counter()
    first = render_pdf(quotation)
    first_ms = (time.perf_counter() - started) * 1000
    tracemalloc.start()
    pdf = rate(lambda: render_pdf(quotation), seconds=max(SECONDS, 3))
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    rows += [
        ("quotation PDF (10 lines), first in the process", f"{first_ms:,.0f} ms",
         f"{len(first.content) / 1024:.0f} KiB"),
        ("quotation PDF, warm", f"{1000 / pdf:,.0f} ms", f"{pdf:.1f}/s; peak Python heap "
                                                         f"{peak:.0f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'rate':>14}  note")
    print("-" * (width + 40))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
