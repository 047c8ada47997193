"""Server choice: from-filter ranking, purpose, circuit breaker, and shared rate limits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from mailroom.outgoing.models import MailServer, OutgoingMail, RateWindow
from mailroom.outgoing.sending import circuit, rate_limits, server_choice
from tests.outgoing.markers import IN_MEMORY_SQLITE

NOW = datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC)


def make_server(company, name, **fields) -> MailServer:
    fields.setdefault("host", "127.0.0.1")
    return MailServer.objects.create(company=company, name=name, **fields)


def mail(company, email_from="Acme Billing <billing@acme.example>", **fields) -> OutgoingMail:
    return OutgoingMail(company=company, email_from=email_from, **fields)


def test_exact_address_then_domain_then_any_then_sequence(acme, globex):
    any_sender = make_server(acme, "any", sequence=1)
    domain = make_server(acme, "domain", sequence=5, from_filter="acme.example")
    exact = make_server(acme, "exact", sequence=9, from_filter="billing@acme.example, x.test")
    make_server(acme, "other domain", sequence=0, from_filter="other.example")
    make_server(acme, "off", sequence=0, active=False)
    make_server(acme, "bulk only", sequence=0, purpose="bulk")
    make_server(globex, "globex", sequence=0)
    servers = list(MailServer.objects.all())

    assert server_choice.candidates(mail(acme), servers) == [exact, domain, any_sender]
    assert server_choice.candidates(mail(acme, "Sales <Sales@ACME.example>"), servers) == [
        domain, any_sender]
    assert server_choice.candidates(mail(acme, "noreply@elsewhere.example"), servers) == [
        any_sender]


def test_purpose_keeps_bulk_and_transactional_apart(acme):
    both = make_server(acme, "both", sequence=3)
    bulk = make_server(acme, "bulk", sequence=1, purpose="bulk")
    transactional = make_server(acme, "tx", sequence=2, purpose="transactional")
    servers = list(MailServer.objects.all())
    assert server_choice.candidates(mail(acme, purpose="bulk"), servers) == [bulk, both]
    assert server_choice.candidates(mail(acme, purpose="transactional"), servers) == [
        transactional, both]


def test_an_explicit_server_wins_over_the_filter(acme):
    make_server(acme, "first", sequence=1)
    chosen = make_server(acme, "chosen", sequence=9, from_filter="someone@else.example")
    servers = list(MailServer.objects.all())
    assert server_choice.candidates(mail(acme, server=chosen), servers) == [chosen]
    MailServer.objects.filter(pk=chosen.pk).update(active=False)
    assert server_choice.candidates(mail(acme, server=chosen), MailServer.objects.all()) == []


def test_the_circuit_opens_with_a_growing_cool_down_and_closes_on_success(acme):
    server = make_server(acme, "flaky")
    assert not circuit.circuit_open(server, NOW)
    until = circuit.record_failure(server, "refused", NOW)
    assert until == NOW + timedelta(seconds=15) and circuit.circuit_open(server, NOW)
    assert not circuit.circuit_open(server, until)
    assert circuit.record_failure(server, "refused", until) == until + timedelta(seconds=30)
    assert circuit.record_failure(server, "refused", NOW) == NOW + timedelta(seconds=60)
    stored = MailServer.objects.get(pk=server.pk)  # shared with every worker
    assert stored.consecutive_failures == 3 and stored.last_error == "refused"
    assert stored.circuit_open_until == NOW + timedelta(seconds=60)
    assert circuit.cool_down(50) == timedelta(minutes=15)

    circuit.record_success(server)
    stored.refresh_from_db()
    assert stored.consecutive_failures == 0 and stored.circuit_open_until is None


def test_a_rate_limit_grants_what_fits_and_says_until_when_the_rest_waits(acme):
    server = make_server(acme, "limited", rate_per_minute=60, rate_per_hour=100)
    first = rate_limits.reserve(server, 200, NOW)
    assert first.granted == 60 and first.wait_until == datetime(2026, 3, 2, 10, 16, tzinfo=UTC)
    assert rate_limits.reserve(server, 1, NOW + timedelta(seconds=20)).granted == 0

    next_minute = NOW + timedelta(minutes=1)
    second = rate_limits.reserve(server, 200, next_minute)
    assert second.granted == 40  # the hour is full now
    assert second.wait_until == datetime(2026, 3, 2, 11, tzinfo=UTC)
    second.release(10)  # ten could not be sent after all
    assert rate_limits.reserve(server, 200, next_minute).granted == 10

    assert rate_limits.reserve(make_server(acme, "unlimited"), 5000, NOW).granted == 5000


@IN_MEMORY_SQLITE
@pytest.mark.django_db(transaction=True)
def test_reservations_from_many_threads_never_exceed_the_limit(acme):
    server = make_server(acme, "limited", rate_per_minute=60)
    granted: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                granted.append(rate_limits.reserve(server, 3, NOW).granted)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(granted) == 60
    assert RateWindow.objects.get(server=server).count == 60
