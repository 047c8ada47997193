"""lib/mailauth.py against a real DNS server on loopback: a From is trusted only when the
results computed here authenticate its domain."""

from __future__ import annotations

import functools
import time

import authres
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.lib import dkim, dns_lookup, mailauth
from mailroom.lib.dns_lookup import DnsConfig
from mailroom.lib.mailauth import AuthResult, authenticate
from tests.lib.dns_zone import DnsZone, closed_port_config

SPF = ("TXT", "v=spf1 ip4:127.0.0.1 -all")
REJECT = ("TXT", "v=DMARC1; p=reject; rua=mailto:d@example.com")


@functools.cache
def key() -> tuple[bytes, str]:
    return dkim.generate_key(2048)


def message(sender: str = "boss@example.com", body: str = "Pay the invoice.") -> bytes:
    return (f"From: {sender}\r\nTo: ops@mailroom.test\r\nSubject: Invoice\r\n"
            f"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n"
            f"\r\n{body}\r\n").encode()


def signed(domain: str = "example.com", sender: str = "boss@example.com") -> bytes:
    return dkim.DkimSigner(domain, "s1", key()[0]).sign(message(sender))


def key_record(domain: str = "example.com") -> dict:
    return {f"s1._domainkey.{domain}": [("TXT", dkim.dns_txt_value(key()[0]))]}


@pytest.fixture
def zone():
    with DnsZone({"example.com": [SPF], "_dmarc.example.com": [REJECT], **key_record()}) as z:
        yield z


def check(zone, raw, *, ip="127.0.0.1", mail_from="bounce@example.com",
          from_domain="example.com", **kw) -> AuthResult:
    return authenticate(raw, from_domain=from_domain, ip=ip, mail_from=mail_from,
                        dns=zone.config, **kw)


def test_dkim_signed_with_dmarc_reject_is_verified(zone):
    result = check(zone, signed(), ip=None, mail_from="")
    assert result.dkim == (("example.com", "pass"),)
    assert (result.dmarc, result.dmarc_policy) == ("pass", "reject")
    assert result.verified


def test_body_tampered_after_signing_fails_dkim(zone):
    raw = signed().replace(b"Pay the invoice.", b"Pay the invoice to IBAN XX.")
    result = check(zone, raw, ip=None, mail_from="")
    assert result.dkim == (("example.com", "fail"),)
    assert result.dmarc == "fail"
    assert not result.verified


def test_spoofed_from_fails_dmarc(zone):
    result = check(zone, message(), ip="127.0.0.2", mail_from="boss@example.com")
    assert result.spf == "fail"
    assert result.dkim == ()
    assert (result.dmarc, result.dmarc_policy) == ("fail", "reject")
    assert not result.verified
    assert result.summary() == "spf=fail (example.com) dkim=none dmarc=fail (p=reject)"


def test_spf_pass_with_aligned_mail_from_is_verified(zone):
    result = check(zone, message())
    assert (result.spf, result.spf_domain, result.dmarc) == ("pass", "example.com", "pass")
    assert result.verified


def test_spf_pass_for_another_domain_is_not_aligned(zone):
    zone.add("other.net", "TXT", "v=spf1 ip4:127.0.0.0/8 -all")
    result = check(zone, message(), mail_from="bounce@other.net")
    assert (result.spf, result.spf_domain) == ("pass", "other.net")
    assert result.dmarc == "fail"
    assert not result.verified


def test_subdomain_is_aligned_relaxed(zone):
    zone.add("mail.example.com", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    result = check(zone, message(), mail_from="bounce@mail.example.com")
    assert (result.spf, result.dmarc) == ("pass", "pass")
    assert result.verified
    # a DKIM d= on a subdomain aligns too, and From on a subdomain finds the org record
    zone.records.update(key_record("mail.example.com"))
    result = check(zone, signed("mail.example.com"), ip=None, mail_from="")
    assert result.dkim == (("mail.example.com", "pass"),) and result.verified
    raw = signed("example.com", sender="boss@eu.example.com")
    result = check(zone, raw, ip=None, mail_from="", from_domain="eu.example.com")
    assert (result.dmarc, result.dmarc_policy) == ("pass", "reject") and result.verified


def test_strict_alignment_refuses_subdomain(zone):
    zone.records["_dmarc.example.com"] = [("TXT", "v=DMARC1; p=quarantine; aspf=s")]
    zone.add("mail.example.com", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    result = check(zone, message(), mail_from="bounce@mail.example.com")
    assert (result.spf, result.dmarc, result.dmarc_policy) == ("pass", "fail", "quarantine")
    assert not result.verified


def test_subdomain_policy_applies_to_subdomains(zone):
    zone.records["_dmarc.example.com"] = [("TXT", "v=DMARC1; p=none; sp=reject")]
    result = check(zone, message("x@eu.example.com"), from_domain="eu.example.com",
                   ip="127.0.0.2", mail_from="x@eu.example.com")
    assert (result.dmarc, result.dmarc_policy) == ("fail", "reject")


def test_no_dmarc_record_with_aligned_dkim_is_verified(zone):
    del zone.records["_dmarc.example.com"]
    result = check(zone, signed(), ip=None, mail_from="")
    assert (result.dmarc, result.dmarc_policy) == ("none", "")
    assert result.verified
    unsigned = check(zone, message(), ip=None, mail_from="")
    assert not unsigned.verified


def test_no_dmarc_record_with_aligned_spf_is_verified(zone):
    del zone.records["_dmarc.example.com"]
    assert check(zone, message()).verified
    assert not check(zone, message(), ip="127.0.0.2").verified


def test_dkim_without_published_key_is_permerror(zone):
    del zone.records["s1._domainkey.example.com"]
    result = check(zone, signed(), ip=None, mail_from="")
    assert result.dkim == (("example.com", "permerror"),)
    assert not result.verified


def test_servfail_is_temperror(zone):
    zone.records["example.com"] = [("SERVFAIL", "")]
    zone.records["_dmarc.example.com"] = [("SERVFAIL", "")]
    result = check(zone, message())
    assert (result.spf, result.dmarc) == ("temperror", "temperror")
    assert not result.verified


def test_dns_down_is_temperror_within_timeout():
    config = closed_port_config(timeout=1.0)
    started = time.monotonic()
    result = authenticate(signed(), from_domain="example.com", ip="127.0.0.1",
                          mail_from="bounce@example.com", dns=config)
    assert time.monotonic() - started < config.timeout + 1.0
    assert result.spf == "temperror"
    assert result.dkim == (("example.com", "temperror"),)
    assert result.dmarc == "temperror"
    assert not result.verified


def test_slow_dns_spends_one_budget_for_all_lookups():
    records = {"example.com": [SPF], "_dmarc.example.com": [REJECT], **key_record()}
    with DnsZone(records, delay=0.6, timeout=1.0) as zone:
        started = time.monotonic()
        result = check(zone, signed())
        assert time.monotonic() - started < 2.0
    assert not result.verified


def test_spf_lookup_limit(zone):
    for i in range(12):
        zone.add(f"l{i}.example.com", "TXT", f"v=spf1 include:l{i + 1}.example.com -all")
    zone.records["example.com"] = [("TXT", "v=spf1 include:l0.example.com -all")]
    result = check(zone, message())
    assert result.spf == "permerror"
    assert len([q for q in zone.queries if q[0].startswith("l")]) <= 11


def test_at_most_five_signatures_are_checked(zone):
    raw = signed()
    for _ in range(7):
        raw = dkim.DkimSigner("example.com", "s1", key()[0]).sign(raw)
    result = check(zone, raw, ip=None, mail_from="")
    assert len(result.dkim) == mailauth.MAX_DKIM_SIGNATURES


GOOGLE = ("Authentication-Results: mx.google.com;\r\n"
          "       dkim=pass header.i=@example.com header.s=s1;\r\n"
          "       spf=pass (google.com: domain of bounce@example.com designates 192.0.2.1)"
          " smtp.mailfrom=bounce@example.com;\r\n"
          "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com\r\n")
FORGED = ("Authentication-Results: mx.forger.test; spf=pass smtp.mailfrom=example.com;"
          " dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n")


def test_trusted_authentication_results_are_used(zone):
    zone.records["example.com"] = []  # no SPF, no key: only the provider's word counts
    raw = GOOGLE.encode() + message()
    result = check(zone, raw, ip=None, mail_from="", trusted_results=["mx.google.com"])
    assert (result.spf, result.spf_domain) == ("pass", "example.com")
    assert result.dmarc == "pass"
    assert result.verified


def test_untrusted_authentication_results_are_ignored(zone):
    raw = FORGED.encode() + message()
    result = check(zone, raw, ip=None, mail_from="", trusted_results=["mx.google.com"])
    assert (result.spf, result.dkim, result.dmarc) == ("none", (), "fail")
    assert not result.verified
    # without a trusted list no header is read at all
    raw = GOOGLE.encode() + message()
    assert not check(zone, raw, ip=None, mail_from="").verified


def test_only_the_topmost_trusted_header_counts(zone):
    honest = ("Authentication-Results: mx.google.com; spf=fail smtp.mailfrom=example.com;"
              " dmarc=fail (p=REJECT) header.from=example.com\r\n")
    raw = honest.encode() + GOOGLE.encode() + message()  # the sender wrote the lower one
    result = check(zone, raw, ip=None, mail_from="", trusted_results=["mx.google.com"])
    assert (result.spf, result.dmarc) == ("fail", "fail")
    assert not result.verified


def test_trusted_spf_is_not_used_when_we_check_spf_ourselves(zone):
    raw = GOOGLE.encode() + message()
    result = check(zone, raw, ip="127.0.0.2", mail_from="x@example.com",
                   trusted_results=["mx.google.com"])
    assert result.spf == "fail"


def test_summary_and_header_value(zone):
    zone.records["_dmarc.example.com"] = [("TXT", "v=DMARC1; p=quarantine")]
    result = check(zone, signed())
    assert result.summary() == "spf=pass (example.com) dkim=pass (example.com) dmarc=pass"
    value = result.header_value("mailroom.example.net")
    assert value == ("mailroom.example.net; spf=pass smtp.mailfrom=example.com; "
                     "dkim=pass header.d=example.com; "
                     "dmarc=pass (p=quarantine) header.from=example.com")
    parsed = authres.AuthenticationResultsHeader.parse_value(value)
    assert parsed.authserv_id == "mailroom.example.net"
    assert [(r.method, r.result) for r in parsed.results] == [
        ("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass")]
    with pytest.raises(ValueError):
        result.header_value("evil; dkim=pass")


def test_hostile_domains_stay_out_of_the_header():
    result = AuthResult(from_domain="example.com", spf="none", spf_domain="",
                        dkim=(("", "permerror"),), dmarc="none", dmarc_policy="")
    assert result.header_value("mx.test") == (
        "mx.test; spf=none; dkim=permerror; dmarc=none header.from=example.com")
    assert result.summary() == "spf=none (-) dkim=permerror (-) dmarc=none"
    assert not result.verified


def test_bad_signature_domain_is_permerror(zone):
    raw = signed().replace(b"d=example.com", b"d=exa\xffmple;com")
    result = check(zone, raw, ip=None, mail_from="")
    assert [r for _, r in result.dkim] == ["permerror"]
    assert "\n" not in result.header_value("mx.test")


def test_garbage_arguments_do_not_raise(zone):
    result = check(zone, b"\x00\xff", ip="not an ip", mail_from="a@@b\r\n",
                   from_domain="bad domain\r\n")
    assert result.spf in mailauth.SPF_RESULTS and not result.verified


@given(raw=st.binary(max_size=600), mail_from=st.text(max_size=40),
       prefix=st.sampled_from([b"", b"DKIM-Signature: v=1; d=example.com; s=s1; b=; h=from\r\n",
                               GOOGLE.encode()]))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_bytes_never_raise(zone, raw, mail_from, prefix):
    result = check(zone, prefix + raw, ip="127.0.0.1", mail_from=mail_from,
                   trusted_results=["mx.google.com"])
    assert result.dmarc in ("pass", "fail", "none", "temperror")
    assert "\n" not in result.summary() and "\n" not in result.header_value("mx.test")


def test_default_config_is_the_system_resolver():
    assert DnsConfig() == DnsConfig(nameservers=(), port=53, timeout=3.0)


def test_concurrent_checks_each_use_their_own_dns():
    """pyspf's lookups are routed per call (a ContextVar), not through a shared global."""
    from concurrent.futures import ThreadPoolExecutor

    import spf

    allow = {"example.com": [SPF], "_dmarc.example.com": [REJECT]}
    deny = {"example.com": [("TXT", "v=spf1 -all")], "_dmarc.example.com": [REJECT]}
    with DnsZone(allow, delay=0.05) as good, DnsZone(deny, delay=0.05) as bad:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda z: check(z, message()).spf, [good, bad] * 8))
    assert results == ["pass", "fail"] * 8
    assert mailauth._spf_dns.get() is None
    assert spf.DNSLookup.fallback is spf.DNSLookup_dnspython  # others still get pyspf's own


def test_cached_answers_and_cached_nxdomain_are_given_without_asking_again(zone, monkeypatch):
    """Answers and NXDOMAIN are taken from the cache as dnspython's resolve would give them,
    without a query being built (the router asks for the same domains all day)."""
    first = dns_lookup.DnsLookup(zone.config)
    records = first.txt("example.com")
    assert records == [b"v=spf1 ip4:127.0.0.1 -all"]
    assert first.resolve("nowhere.example.com", "TXT") == []  # NXDOMAIN, now cached
    again = dns_lookup.DnsLookup(zone.config)

    def no_query(*args, **kwargs):
        raise AssertionError("asked the DNS server again")

    monkeypatch.setattr(again.resolver, "resolve", no_query)
    assert again.txt("example.com") == records
    assert again.resolve("nowhere.example.com", "TXT") == []
    with pytest.raises(dns_lookup.DnsTempError, match="AssertionError"):  # asked: not cached
        again.resolve("not-cached.example.com", "TXT")


@pytest.mark.parametrize(("setting", "nameservers", "port"), [
    ("", (), 53),
    ("127.0.0.1", ("127.0.0.1",), 53),
    (" 10.0.0.1:5353 , 10.0.0.2 ", ("10.0.0.1", "10.0.0.2"), 5353),
    ("::1", ("::1",), 53),  # an IPv6 address is not host:port
    ("127.0.0.1:53,,", ("127.0.0.1",), 53),
])
def test_the_dns_servers_setting_is_read_as_the_router_and_campaigns_take_it(
        setting, nameservers, port):
    config = DnsConfig.from_setting(setting, timeout=1.5)
    assert (config.nameservers, config.port, config.timeout) == (nameservers, port, 1.5)
