"""The deliverability check against a DNS zone on loopback (tests/lib/dns_zone.py): a domain
set up right passes; SPF without the relay's include, a DKIM key that is not ours and a
missing DMARC record each fail with what to publish; a failing domain refuses a campaign
unless an override gives a reason."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError

from mailroom.campaigns import deliverability
from mailroom.campaigns.models import Campaign
from mailroom.lib import dkim
from mailroom.outgoing.models import DkimKey, MailServer, Purpose
from tests.lib.dns_zone import DnsZone

pytestmark = pytest.mark.django_db

DOMAIN = "acme.test"
SPF_OK = "v=spf1 include:relay.example ~all"
DMARC_OK = "v=DMARC1; p=quarantine; adkim=s; rua=mailto:dmarc@acme.test"


def _key_pair() -> tuple[str, str]:
    pem, txt = dkim.generate_key(bits=1024)
    return pem.decode("ascii") if isinstance(pem, bytes) else pem, txt


OURS = _key_pair()
THEIRS = _key_pair()


def records(*, spf=SPF_OK, dkim_txt=None, dmarc=DMARC_OK) -> dict:
    zone = {
        "relay.example": [("TXT", "v=spf1 ip4:198.51.100.0/24 -all")],
        "smtp.relay.example": [("A", "198.51.100.7")],
        "other.example": [("TXT", "v=spf1 ip4:203.0.113.0/24 -all")],
        DOMAIN: [("TXT", "google-site-verification=abc")] + ([("TXT", spf)] if spf else []),
        f"mailroom._domainkey.{DOMAIN}": [("TXT", dkim_txt or OURS[1])],
    }
    if dmarc:
        zone[f"_dmarc.{DOMAIN}"] = [("TXT", dmarc)]
    return zone


@pytest.fixture
def dns(settings):
    cache.clear()  # results are cached for a few minutes
    with DnsZone(records()) as zone:
        settings.MAILROOM_DNS_SERVERS = f"{zone.config.nameservers[0]}:{zone.config.port}"
        settings.MAILROOM_DNS_TIMEOUT = 2.0
        yield zone
    cache.clear()


@pytest.fixture
def sending(acme):
    """acme sends bulk mail through smtp.relay.example and signs acme.test with our key."""
    MailServer.objects.create(company=acme, name="Relay", host="smtp.relay.example",
                              purpose=Purpose.BULK)
    DkimKey.objects.create(company=acme, domain=DOMAIN, selector="mailroom",
                           private_key=OURS[0], dns_txt=OURS[1])
    return acme


def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def test_a_domain_set_up_right_passes(dns, sending):
    report = deliverability.check_domain(sending, DOMAIN)
    checks = by_name(report)
    assert report.status == "pass", report.checks
    assert checks["SPF"].line == ("The SPF record authorises the bulk server smtp.relay.example "
                                  "(include:relay.example).")
    assert checks["DKIM"].status == "pass"
    assert checks["DMARC"].line.startswith("Policy quarantine (mail that fails goes to the "
                                           "spam folder); alignment DKIM strict, SPF relaxed")
    assert not report.failing


def test_spf_naming_the_servers_address_passes_through_pyspf(dns, sending):
    dns.records[DOMAIN] = [("TXT", "v=spf1 mx ip4:198.51.100.7 -all")]
    spf = by_name(deliverability.check_domain(sending, DOMAIN))["SPF"]
    assert spf.status == "pass" and "(198.51.100.7)" in spf.line


def test_spf_missing_the_relays_include_fails_with_the_fix(dns, sending):
    dns.records[DOMAIN] = [("TXT", "v=spf1 include:other.example ~all")]
    report = deliverability.check_domain(sending, DOMAIN)
    spf = by_name(report)["SPF"]
    assert spf.status == "fail" and report.status == "fail"
    assert "does not authorise the bulk server smtp.relay.example" in spf.line
    assert "include:relay.example" in spf.fix and "ip4:198.51.100.7" in spf.fix
    assert spf.found == "v=spf1 include:other.example ~all"


def test_no_spf_record_fails(dns, sending):
    dns.records[DOMAIN] = [("TXT", "google-site-verification=abc")]
    spf = by_name(deliverability.check_domain(sending, DOMAIN))["SPF"]
    assert spf.status == "fail" and "publishes no SPF record" in spf.line
    assert spf.fix == "Publish a TXT record at acme.test: v=spf1 include:relay.example ~all"


def test_an_include_chain_is_followed(dns, sending):
    dns.records[DOMAIN] = [("TXT", "v=spf1 include:_spf.acme.test -all")]
    dns.records["_spf.acme.test"] = [("TXT", "v=spf1 include:relay.example -all")]
    assert by_name(deliverability.check_domain(sending, DOMAIN))["SPF"].status == "pass"


def test_a_dkim_key_that_is_not_ours_fails(dns, sending):
    dns.records[f"mailroom._domainkey.{DOMAIN}"] = [("TXT", THEIRS[1])]
    dkim_check = by_name(deliverability.check_domain(sending, DOMAIN))["DKIM"]
    assert dkim_check.status == "fail"
    assert "is not the one Mailroom signs with" in dkim_check.line
    assert OURS[1] in dkim_check.fix and dkim_check.found == THEIRS[1]


def test_an_unpublished_dkim_key_fails_and_no_key_only_warns(dns, sending):
    del dns.records[f"mailroom._domainkey.{DOMAIN}"]
    dkim_check = by_name(deliverability.check_domain(sending, DOMAIN))["DKIM"]
    assert dkim_check.status == "fail" and "Nothing is published" in dkim_check.line
    DkimKey.objects.all().delete()
    dkim_check = by_name(deliverability.check_domain(sending, DOMAIN, fresh=True))["DKIM"]
    assert dkim_check.status == "warn" and "no active DKIM key" in dkim_check.line


def test_no_dmarc_fails_with_the_record_to_publish(dns, sending):
    del dns.records[f"_dmarc.{DOMAIN}"]
    dmarc = by_name(deliverability.check_domain(sending, DOMAIN))["DMARC"]
    assert dmarc.status == "fail" and "publishes no DMARC record" in dmarc.line
    assert dmarc.fix.startswith("Publish a TXT record at _dmarc.acme.test: v=DMARC1; p=none;")


def test_dmarc_policy_none_warns_and_a_subdomain_inherits_the_parents(dns, sending):
    dns.records[f"_dmarc.{DOMAIN}"] = [("TXT", "v=DMARC1; p=none")]
    assert by_name(deliverability.check_domain(sending, DOMAIN))["DMARC"].status == "warn"
    dmarc = deliverability.check_dmarc(
        deliverability._Lookup(deliverability.dns_config()), f"news.{DOMAIN}")
    assert dmarc.line.startswith("Inherited from acme.test. Policy none")


def test_a_dns_server_that_fails_is_a_warning_not_a_failure(dns, sending):
    dns.records[DOMAIN] = [("SERVFAIL", "")]
    spf = by_name(deliverability.check_domain(sending, DOMAIN))["SPF"]
    assert spf.status == "warn" and "DNS did not answer" in spf.line


def test_results_are_cached_until_asked_afresh(dns, sending):
    deliverability.check_domain(sending, DOMAIN)
    asked = len(dns.queries)
    del dns.records[f"_dmarc.{DOMAIN}"]
    assert deliverability.check_domain(sending, DOMAIN).status == "pass"
    assert len(dns.queries) == asked
    assert deliverability.check_domain(sending, DOMAIN, fresh=True).status == "fail"


# --- the refusal -------------------------------------------------------------------------------

def campaign(company, **fields) -> Campaign:
    return Campaign.objects.create(company=company, name="Spring news", subject="Spring sale",
                                   email_from="Acme News <news@acme.test>", **fields)


def test_a_failing_domain_refuses_the_campaign_naming_the_checks(dns, sending):
    del dns.records[f"_dmarc.{DOMAIN}"]
    dns.records[DOMAIN] = [("TXT", "v=spf1 include:other.example ~all")]
    with pytest.raises(ValidationError) as refused:
        deliverability.require_sendable(campaign(sending))
    text = " ".join(refused.value.messages)
    assert text.startswith("acme.test fails the deliverability check (SPF and DMARC)")
    assert "Publish a TXT record at _dmarc.acme.test" in text


def test_an_override_with_a_reason_lets_it_go(dns, sending):
    del dns.records[f"_dmarc.{DOMAIN}"]
    report = deliverability.require_sendable(campaign(
        sending, deliverability_override="DMARC is being set up by our provider this week."))
    assert [c.name for c in report.failing] == ["DMARC"]
    with pytest.raises(ValidationError):
        deliverability.require_sendable(campaign(sending, deliverability_override="   "))


def test_a_passing_domain_is_sendable(dns, sending):
    assert deliverability.require_sendable(campaign(sending)).status == "pass"
