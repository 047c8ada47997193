"""The digest email speaks the recipient's language: French, German and Spanish words from
the catalogues in digests/locale, and numbers, money and dates from Babel for every language.
The compiled .mo files must say what their .po files say."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from mailroom.core.kpis import registered
from mailroom.digests import wording
from mailroom.digests.board import Board
from mailroom.digests.mail import render
from mailroom.digests.periods import containing
from tests.digests.conftest import make_digest

LOCALE = Path(wording.__file__).parent / "locale"
LANGUAGES = ("fr", "de", "es")
TEMPLATES = Path(wording.__file__).parent / "templates" / "digests"
PRODUCT_APPS = {"crm", "sales", "invoicing", "helpdesk", "recruitment", "projects", "outgoing",
                "incoming", "chatter"}


def catalogue(lang):
    with (LOCALE / lang / "LC_MESSAGES" / "django.po").open("rb") as po:
        return read_po(po)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_compiled_catalogue_matches_its_source(lang):
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(lang))
    assert (LOCALE / lang / "LC_MESSAGES" / "django.mo").read_bytes() == compiled.getvalue(), \
        f"recompile {lang}: the .mo is not the .po's"


def _msgids() -> set[tuple[str | None, str]]:
    ids = {(None, text) for name in dir(wording) if name.isupper()
           for table in [getattr(wording, name)] if isinstance(table, dict)
           for text in table.values() if name != "EVERY"}
    ids |= {(wording.HOW_OFTEN, text) for text in wording.EVERY.values()}
    ids |= {(None, wording.NOT_AVAILABLE), (None, wording.NOT_COMPUTED), (None, wording.N_A)}
    ids |= {(None, kpi.label) for kpi in registered()  # the apps' own, not tests' extras
            if kpi.key.split(".")[0] in PRODUCT_APPS}
    for template in ("mail_body.html", "mail_kpis.html"):
        source = (TEMPLATES / template).read_text()
        for text, context in re.findall(r'{% translate "([^"]+)"(?: context "([^"]+)")? %}',
                                        source):
            ids.add((context or None, text))
        for block in re.findall(r"{% blocktranslate[^%]*%}(.*?){% endblocktranslate %}",
                                source, re.S):
            ids.add((None, re.sub(r"{{ (\w+) }}", r"%(\1)s", block)))
    return ids


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_word_of_the_email_and_every_kpi_label_is_translated(lang):
    messages = {(m.context, m.id) for m in catalogue(lang) if m.id and m.string}
    missing = _msgids() - messages
    assert not missing, sorted(missing, key=str)


def test_a_french_recipient_reads_french(acme, domain, alice, bob):
    bob.language = "fr_FR"
    digest = make_digest(acme, recipients=[bob], periodicity="weekly")
    from datetime import UTC, datetime

    period = containing("weekly", datetime(2026, 11, 30, 12, tzinfo=UTC), "Europe/Paris")
    html = render(digest, bob, period, board=Board(), tip=None, notice=False).html
    assert "Nouvelles pistes" in html  # the KPI label
    assert "Semaine précédente" in html or "rien à comparer" in html
    assert "par rapport à la semaine précédente" in html
    assert "Se désabonner de ce résumé" in html and "envoyé chaque semaine" in html
    assert "30 nov." in html  # Babel's date in French
    english = render(digest, alice, period, board=Board(), tip=None, notice=False).html
    assert "New leads" in english and "Unsubscribe from this digest" in english


def test_a_language_without_a_catalogue_keeps_english_words_and_local_numbers(acme, domain,
                                                                               bob):
    bob.language = "ja_JP"
    digest = make_digest(acme, recipients=[bob])
    from datetime import UTC, datetime

    period = containing("weekly", datetime(2026, 11, 30, 12, tzinfo=UTC), "Europe/Paris")
    html = render(digest, bob, period, board=Board(), tip=None, notice=False).html
    assert "New leads" in html and "Unsubscribe from this digest" in html
    assert "2026年" in html  # the period label follows Japanese date formats
