"""The render pool: many letters rendered side by side in child processes give the same
letters as one rendered here, and a pool whose child dies still renders every letter."""

from __future__ import annotations

import datetime
import io
import os
import signal
from decimal import Decimal

import pytest
from pypdf import PdfReader

from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.contacts.models import Partner
from mailroom.letters import render_pool, services
from mailroom.letters.models import Letter


@pytest.fixture
def two_renderers(monkeypatch):
    monkeypatch.setenv("MAILROOM_LETTER_RENDERERS", "2")
    yield
    render_pool.shutdown()


def _invoices(acme, bob, count: int, *, zip_code: str = "75002") -> list[Invoice]:
    made = []
    for n in range(count):
        partner = Partner.objects.create(company=acme, name=f"Client {n}", street=f"{n} Rue",
                                         zip=zip_code, city="Paris", country="FR")
        draft = invoicing.save_invoice(Invoice(company=acme, partner=partner, user=bob,
                                               invoice_date=datetime.date(2026, 11, 2)),
                                       actor=bob)
        draft = invoicing.set_lines(draft, [{"description": f"Item {n}", "quantity": 1,
                                             "price_unit": Decimal("10")}], actor=bob)
        made.append(invoicing.post_invoice(draft, actor=bob))
    return made


def _text(letter: Letter) -> list[str]:
    from mailroom.core.blobs import attachment_path

    reader = PdfReader(io.BytesIO(attachment_path(letter.pdf_sha256).read_bytes()))
    return [" ".join((page.extract_text() or "").split()) for page in reader.pages]


def test_the_pool_renders_the_same_letters_as_this_process(acme, bob, two_renderers):
    invoices = _invoices(acme, bob, 4)
    pooled = services.send_many_by_post(invoices, actor=bob,
                                        options=services.LetterOptions(cover_page=True))
    assert render_pool._pool is not None  # the children did the work
    here = services.send_by_post(invoices[2], actor=bob,
                                 options=services.LetterOptions(cover_page=True))
    assert all(isinstance(letter, Letter) for letter in pooled)
    assert [letter.object_id for letter in pooled] == [i.pk for i in invoices]  # in order
    assert _text(pooled[2]) == _text(here)
    assert (pooled[2].pages, pooled[2].sheets) == (here.pages, here.sheets)
    assert "Client 2" in _text(pooled[2])[0] and "Item 2" in " ".join(_text(pooled[2]))
    assert Letter.objects.filter(state="queued").count() == 5


def test_a_bad_record_does_not_stop_the_others(acme, bob, two_renderers):
    good = _invoices(acme, bob, 2)
    bad = _invoices(acme, bob, 1, zip_code="")
    results = services.send_many_by_post([good[0], bad[0], good[1]], actor=bob)
    assert isinstance(results[0], Letter) and isinstance(results[2], Letter)
    assert "postcode (ZIP)" in " ".join(results[1].messages)
    assert Letter.objects.count() == 2


def test_a_dead_child_loses_no_letter(acme, bob, two_renderers):
    invoices = _invoices(acme, bob, 3)
    services.send_many_by_post(invoices[:2], actor=bob)  # the pool is up
    pool = render_pool._pool
    for process in list(pool._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
    results = services.send_many_by_post(invoices, actor=bob,
                                         options=services.LetterOptions(color=True))
    assert all(isinstance(letter, Letter) for letter in results)
    assert Letter.objects.count() == 5
    assert render_pool._pool is not pool  # the broken pool was dropped


def test_one_letter_never_starts_a_pool(acme, bob, two_renderers):
    render_pool.shutdown()
    services.send_many_by_post(_invoices(acme, bob, 1), actor=bob)
    assert render_pool._pool is None


def test_the_number_of_renderers_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAILROOM_LETTER_RENDERERS", "3")
    assert render_pool.size() == 3
    monkeypatch.setenv("MAILROOM_LETTER_RENDERERS", "0")
    assert render_pool.size() == 1
    monkeypatch.setenv("MAILROOM_LETTER_RENDERERS", "many")
    assert render_pool.size() == 1
    monkeypatch.delenv("MAILROOM_LETTER_RENDERERS")
    assert 1 <= render_pool.size() <= render_pool.MAX_DEFAULT



def test_an_idle_pool_is_stopped(acme, bob, two_renderers, monkeypatch):
    """A web process that sent one mass mailing does not keep its renderers' memory."""
    monkeypatch.setattr(render_pool, "IDLE_SECONDS", 0.0)
    services.send_many_by_post(_invoices(acme, bob, 2), actor=bob)
    render_pool._stop_if_idle()
    assert render_pool._pool is None
