"""The deliverability check of a sending domain: what receivers will find in its DNS.

- SPF: one `v=spf1` record that authorises the company's bulk servers — by an include: of
  the server's own domain (followed through include: and redirect= chains, at most
  MAX_SPF_LOOKUPS names, as RFC 7208 allows), or by pyspf evaluating the record for each
  address of the server (lib.mailauth, our resolver).
- DKIM: the key Mailroom signs this domain's mail with (the newest active DkimKey) is the
  one published at <selector>._domainkey.<domain>.
- DMARC: a `v=DMARC1` record at _dmarc.<domain> (or its organizational domain), its policy
  and alignment. Mailroom signs with and bounces to the From domain itself, so both
  identifiers align when SPF and DKIM pass, strict or relaxed.

Each check is pass, warn or fail with a line in plain words and what to publish to fix it.
A DNS server that does not answer is a warning, never a failure: an outage must not block
sending. Results are cached for CACHE_SECONDS (per company, domain and DNS servers);
`check_domain(..., fresh=True)` asks again.

`require_sendable(campaign)` refuses (ValidationError naming the failing checks) a campaign
from a failing domain unless `campaign.deliverability_override` gives a reason; then it
returns and the caller audits the override.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from email.utils import parseaddr

import dns.name
import dns.resolver
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from mailroom.campaigns.campaign_models import Campaign
from mailroom.lib import mailauth
from mailroom.lib.addresses import domain_of
from mailroom.lib.dkim import dns_record_name
from mailroom.lib.dns_lookup import DnsConfig
from mailroom.outgoing.models import DkimKey, MailServer, Purpose

PASS, WARN, FAIL = "pass", "warn", "fail"
CACHE_SECONDS = 300
MAX_SPF_LOOKUPS = 10  # RFC 7208 4.6.4
DNS_BUDGET = 10.0  # seconds for all lookups of one check


@dataclass(frozen=True)
class Check:
    name: str  # SPF, DKIM, DMARC
    status: str  # pass, warn, fail
    line: str  # what was found, in plain words
    fix: str = ""  # what to publish
    found: str = ""  # the record as published


@dataclass(frozen=True)
class Report:
    domain: str
    checks: tuple[Check, ...]
    checked_at: object = field(default_factory=timezone.now)

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def status(self) -> str:
        statuses = {c.status for c in self.checks}
        return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


class DnsUnanswered(Exception):
    pass


def dns_config() -> DnsConfig:
    """MAILROOM_DNS_SERVERS ("host[:port], …"; blank: the system's) as lib.mailauth takes it."""
    return DnsConfig.from_setting(settings.MAILROOM_DNS_SERVERS or "",
                                  float(getattr(settings, "MAILROOM_DNS_TIMEOUT", 3.0)))


class _Lookup:
    """One resolver and one time budget for a whole check."""

    def __init__(self, config: DnsConfig):
        self.config = config
        self.deadline = time.monotonic() + DNS_BUDGET
        self.resolver = dns.resolver.Resolver(configure=not config.nameservers)
        if config.nameservers:
            self.resolver.nameservers = list(config.nameservers)
        self.resolver.port = config.port
        self.resolver.timeout = max(config.timeout, 0.001)

    def resolve(self, name: str, rdtype: str) -> list:
        left = min(self.deadline - time.monotonic(), self.config.timeout)
        if left <= 0:
            raise DnsUnanswered("the DNS time budget is spent")
        try:
            answer = self.resolver.resolve(dns.name.from_text(name), rdtype, lifetime=left,
                                           raise_on_no_answer=False, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except Exception as exc:  # timeout, SERVFAIL, refused, a name that is none
            raise DnsUnanswered(type(exc).__name__) from exc
        return list(answer.rrset) if answer.rrset is not None else []

    def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace")
                for r in self.resolve(name, "TXT")]

    def addresses(self, host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        return [r.address for rdtype in ("A", "AAAA") for r in self.resolve(host, rdtype)]


# --- SPF ---------------------------------------------------------------------------------------

def _bulk_servers(company, domain: str, server: MailServer | None) -> list[MailServer]:
    if server is not None:
        return [server]
    servers = MailServer.objects.filter(company=company, purpose__in=[Purpose.BULK,
                                                                      Purpose.BOTH])
    return [s for s in servers if not s.filter_entries() or any(
        e == domain or e.endswith("@" + domain) for e in s.filter_entries())]


def _included(lookup: _Lookup, record: str) -> set[str]:
    """The domains the record includes or redirects to, followed down the chain."""
    found: set[str] = set()
    queue, lookups = [record], 0
    while queue and lookups < MAX_SPF_LOOKUPS:
        for term in queue.pop(0).split()[1:]:
            term = term.lstrip("+-~?").lower()
            name = term[8:] if term.startswith("include:") else \
                term[9:] if term.startswith("redirect=") else ""
            if not name or "%" in name or name in found or lookups >= MAX_SPF_LOOKUPS:
                continue
            found.add(name.rstrip("."))
            lookups += 1
            queue.extend(t for t in lookup.txt(name) if t.lower().startswith("v=spf1"))
    return found


def _spf_for_server(lookup: _Lookup, domain: str, host: str,
                    included: set[str]) -> tuple[str, str]:
    """(pass, how) when the record authorises `host`; (warn, "") when its address is not
    known here (a relay on this machine); (fail, its first address) otherwise."""
    host = host.lower().rstrip(".")
    parts = host.split(".")
    parents = {".".join(parts[i:]) for i in range(len(parts) - 1)}
    named = sorted(parents & included)
    if named:
        return PASS, f"include:{named[0]}"
    ips = lookup.addresses(host)
    public = [ip for ip in ips if not ipaddress.ip_address(ip).is_loopback]
    if not public:
        return WARN, ""
    for ip in public:
        result = mailauth.authenticate(b"", from_domain=domain, ip=ip,
                                       mail_from=f"postmaster@{domain}", helo=host,
                                       dns=lookup.config)
        if result.spf == "pass":
            return PASS, ip
    return FAIL, public[0]


def check_spf(lookup: _Lookup, company, domain: str, server: MailServer | None = None) -> Check:
    records = [t for t in lookup.txt(domain) if t.lower().startswith("v=spf1")]
    servers = _bulk_servers(company, domain, server)
    hosts = sorted({s.host for s in servers})
    suggestion = " ".join(f"include:{mailauth.organizational_domain(h)}" for h in hosts
                          if not _is_ip(h)) or "ip4:<your server's address>"
    if not records:
        return Check("SPF", FAIL, f"{domain} publishes no SPF record: receivers cannot tell "
                                  "which servers may send its mail.",
                     fix=f"Publish a TXT record at {domain}: v=spf1 {suggestion} ~all")
    if len(records) > 1:
        return Check("SPF", FAIL, f"{domain} publishes {len(records)} SPF records; receivers "
                                  "treat that as an error and trust none of them.",
                     fix="Merge them into one TXT record starting with v=spf1.",
                     found=" | ".join(records))
    record = records[0]
    if not servers:
        return Check("SPF", WARN, "No bulk mail server is set up for this domain, so Mailroom "
                                  "cannot tell whether the SPF record names it.",
                     fix="Add a mail server for bulk mail (Outgoing › Mail servers).",
                     found=record)
    included = _included(lookup, record)
    verdicts = {host: _spf_for_server(lookup, domain, host, included) for host in hosts}
    missing = [h for h, (status, _) in verdicts.items() if status == FAIL]
    unknown = [h for h, (status, _) in verdicts.items() if status == WARN]
    if missing:
        fixes = " ".join(f"ip4:{how}" if ":" not in how else f"ip6:{how}"
                         for h, (_, how) in verdicts.items() if h in missing)
        return Check("SPF", FAIL, f"The SPF record of {domain} does not authorise the bulk "
                                  f"server {', '.join(missing)}: receivers will see its mail "
                                  "as forged.",
                     fix=f"Add include:{mailauth.organizational_domain(missing[0])} (if the "
                         f"provider says so) or {fixes} before the all of: {record}",
                     found=record)
    if unknown:
        return Check("SPF", WARN, f"The bulk server {', '.join(unknown)} has no public "
                                  "address Mailroom can see (it relays on this machine); "
                                  "make sure the SPF record names the address mail leaves "
                                  "from.", found=record)
    how = ", ".join(f"{h} ({via})" for h, (_, via) in verdicts.items())
    return Check("SPF", PASS, f"The SPF record authorises the bulk server {how}.", found=record)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


# --- DKIM --------------------------------------------------------------------------------------

def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def check_dkim(lookup: _Lookup, company, domain: str) -> Check:
    key = (DkimKey.objects.filter(company=company, domain__iexact=domain, active=True)
           .order_by("-created_at", "-pk").first())  # the one the sender signs with
    if key is None:
        return Check("DKIM", WARN, f"Mailroom does not sign mail from {domain}: there is no "
                                   "active DKIM key for it. Gmail and Yahoo want bulk mail "
                                   "signed (unless your mail server signs it).",
                     fix="Generate a key in Outgoing › DKIM keys and publish its record.")
    name = dns_record_name(key.selector, domain)
    ours = _tags(key.dns_txt).get("p", "")
    published = [t for t in lookup.txt(name) if "p=" in t.lower()]
    fix = f"Publish a TXT record at {name}: {key.dns_txt}"
    if not published:
        return Check("DKIM", FAIL, f"Nothing is published at {name}: receivers cannot check "
                                   "Mailroom's signature.", fix=fix)
    if any(_tags(t).get("p", "") == ours for t in published):
        return Check("DKIM", PASS, f"The key published at {name} is the one Mailroom signs "
                                   "with.", found=published[0])
    return Check("DKIM", FAIL, f"The key published at {name} is not the one Mailroom signs "
                               "with (an old key, or another provider's): every signature "
                               "fails.", fix=f"Replace it: {fix[len('Publish '):]}",
                 found=published[0])


# --- DMARC -------------------------------------------------------------------------------------

POLICY_WORDS = {"none": "monitoring only: receivers are asked to do nothing with mail "
                        "that fails",
                "quarantine": "mail that fails goes to the spam folder",
                "reject": "mail that fails is refused"}


def check_dmarc(lookup: _Lookup, domain: str) -> Check:
    organizational = mailauth.organizational_domain(domain)
    records = [t for t in lookup.txt(f"_dmarc.{domain}") if t.lower().startswith("v=dmarc1")]
    where, inherited = f"_dmarc.{domain}", False
    if not records and organizational and organizational != domain:
        records = [t for t in lookup.txt(f"_dmarc.{organizational}")
                   if t.lower().startswith("v=dmarc1")]
        where, inherited = f"_dmarc.{organizational}", bool(records)
    fix = (f"Publish a TXT record at _dmarc.{domain}: v=DMARC1; p=none; "
           f"rua=mailto:dmarc-reports@{domain} (then move to quarantine when the reports "
           "are clean).")
    if not records:
        return Check("DMARC", FAIL, f"{domain} publishes no DMARC record; Gmail and Yahoo "
                                    "ask bulk senders for one.", fix=fix)
    if len(records) > 1:
        return Check("DMARC", FAIL, f"{where} holds {len(records)} DMARC records; receivers "
                                    "ignore them all.", fix="Keep one.",
                     found=" | ".join(records))
    tags = _tags(records[0])
    policy = tags.get("sp", "") if inherited and tags.get("sp") else tags.get("p", "")
    if policy.lower() not in POLICY_WORDS:
        return Check("DMARC", FAIL, f"The DMARC record at {where} has no valid policy (p=).",
                     fix=fix, found=records[0])
    policy = policy.lower()
    modes = {"s": "strict", "r": "relaxed"}
    alignment = (f"alignment DKIM {modes.get(tags.get('adkim', 'r').lower(), 'relaxed')}, "
                 f"SPF {modes.get(tags.get('aspf', 'r').lower(), 'relaxed')}: Mailroom signs "
                 f"and bounces with {domain} itself, so both align")
    line = f"Policy {policy} ({POLICY_WORDS[policy]}); {alignment}."
    if inherited:
        line = f"Inherited from {organizational}. " + line
    if policy == "none":
        return Check("DMARC", WARN, line, fix="When the reports show only your own servers, "
                                              "raise the policy to p=quarantine.",
                     found=records[0])
    return Check("DMARC", PASS, line, found=records[0])


# --- the check and the refusal -----------------------------------------------------------------

def _run(name: str, check, *args) -> Check:
    try:
        return check(*args)
    except DnsUnanswered as exc:
        return Check(name, WARN, f"DNS did not answer ({exc}); try again in a moment.")


def check_domain(company, domain: str, *, server: MailServer | None = None,
                 fresh: bool = False) -> Report:
    domain = (domain or "").strip().lower().rstrip(".")
    config = dns_config()
    key = (f"campaigns:deliverability:{company.pk}:{domain}:{server.pk if server else ''}:"
           f"{','.join(config.nameservers)}:{config.port}")
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    lookup = _Lookup(config)
    report = Report(domain, (_run("SPF", check_spf, lookup, company, domain, server),
                             _run("DKIM", check_dkim, lookup, company, domain),
                             _run("DMARC", check_dmarc, lookup, domain)))
    cache.set(key, report, CACHE_SECONDS)
    return report


def require_sendable(campaign: Campaign) -> Report:
    """Raise ValidationError naming the failing checks of the campaign's From domain, unless
    `campaign.deliverability_override` gives a reason (the caller audits that)."""
    domain = domain_of(parseaddr(campaign.email_from)[1] or campaign.email_from)
    report = check_domain(campaign.company, domain, server=campaign.server)
    if not report.failing or campaign.deliverability_override.strip():
        return report
    names = " and ".join(c.name for c in report.failing)
    raise ValidationError(
        [f"{domain} fails the deliverability check ({names}): receivers would send this "
         "campaign to spam or refuse it."]
        + [f"{c.name}: {c.line} {c.fix}".strip() for c in report.failing]
        + ["Fix the DNS records (Campaigns › Deliverability), or give a reason to send "
           "anyway."])
