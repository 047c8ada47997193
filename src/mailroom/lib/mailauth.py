"""SPF, DKIM and DMARC for inbound mail: may the router trust the From address? (no Django)

A message is posted as a known follower only when its From domain is authenticated by
results computed here, never by headers the sender wrote:

    result = authenticate(raw, from_domain="example.com", ip="192.0.2.1",
                          mail_from="bounce@example.com", dns=DnsConfig())
    result.verified, result.summary(), result.header_value("mailroom.example.net")

How DNS reaches the libraries (one dnspython resolver per call, lib.dns_lookup):
- dkimpy takes a `dnsfunc=`; ours answers from that resolver and notes temporary
  failures and missing keys, which dkimpy reports only as "False".
- pyspf has no resolver parameter: every lookup goes through its module-level
  `spf.DNSLookup`. Swapping it under a lock would serialize every SPF check behind the
  slowest DNS answer, and a hand-written SPF evaluator would lose pyspf's RFC 7208 test
  suite (macros, void lookups, CNAME chains). So on first use we install, once, a
  dispatcher that sends lookups to the resolver held in a ContextVar and falls back to
  pyspf's own function when none is set: concurrent checks each use their own resolver and
  other pyspf users see no change.

Bounded work: `DnsConfig.timeout` is the DNS budget of the whole call (a dead DNS server
costs that once, not once per lookup); after it every lookup is a temperror. pyspf stops
at 10 DNS-querying terms and 2 void lookups (RFC 7208 4.6.4); at most 5 DKIM signatures are
checked; DMARC asks at most 2 names. Nothing raises on hostile input: errors become
temperror/permerror results.

Trusted Authentication-Results: mail fetched from a mailbox has no SMTP client IP, so SPF
cannot be checked here. The admin may list the mailbox provider's authserv-id; only the
top-most header carrying a listed id is read (anything below it may have been written by
the sender). DKIM is still verified here.
"""

from __future__ import annotations

import contextvars
import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import authres
import dkim as dkimpy
import publicsuffix2
import spf

from mailroom.lib.dkim import normalize_line_endings, split_message
from mailroom.lib.dns_lookup import DnsConfig, DnsLookup, DnsTempError

MAX_DKIM_SIGNATURES = 5
MAX_HEADER_BYTES = 256 * 1024  # trusted headers are looked for in this much of the message
SPF_RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")
DKIM_RESULTS = ("pass", "fail", "neutral", "temperror", "permerror")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+\Z")


@dataclass(frozen=True)
class AuthResult:
    from_domain: str
    spf: str  # pass|fail|softfail|neutral|none|temperror|permerror
    spf_domain: str  # the MAIL FROM (or HELO) domain checked
    dkim: tuple[tuple[str, str], ...]  # ((d= domain, result), ...)
    dmarc: str  # pass|fail|none|temperror
    dmarc_policy: str  # none|quarantine|reject|'' (from the _dmarc record)

    @property
    def verified(self) -> bool:
        """DMARC pass; without a DMARC record, an aligned (relaxed) DKIM or SPF pass. A
        DMARC fail or temperror is never trusted."""
        if self.dmarc == "pass":
            return True
        if self.dmarc != "none" or not self.from_domain:
            return False
        return (any(result == "pass" and aligned(d, self.from_domain) for d, result in self.dkim)
                or (self.spf == "pass" and aligned(self.spf_domain, self.from_domain)))

    def summary(self) -> str:
        """One line for the inbound log."""
        parts = [f"spf={self.spf} ({_safe(self.spf_domain)})"]
        parts += [f"dkim={result} ({_safe(d)})" for d, result in self.dkim] or ["dkim=none"]
        parts.append(f"dmarc={self.dmarc}" + (
            f" (p={self.dmarc_policy})" if self.dmarc != "pass" and self.dmarc_policy else ""))
        return " ".join(parts)

    def header_value(self, authserv_id: str) -> str:
        """An RFC 8601 Authentication-Results value. Domains that are not plain DNS names
        (they may come from a hostile signature) are left out rather than quoted."""
        if not _TOKEN.match(authserv_id):
            raise ValueError("authserv-id must be a plain token such as a host name")
        parts = [authserv_id]
        parts.append(f"spf={self.spf}" + _prop("smtp.mailfrom", self.spf_domain))
        parts += [f"dkim={result}" + _prop("header.d", d) for d, result in self.dkim] or [
            "dkim=none"]
        policy = f" (p={self.dmarc_policy})" if self.dmarc_policy else ""
        parts.append(f"dmarc={self.dmarc}{policy}" + _prop("header.from", self.from_domain))
        return "; ".join(parts)


_SYSTEM_DNS = DnsConfig()  # the system resolver, 3 s


def authenticate(raw: bytes, *, from_domain: str, ip: str | None, mail_from: str,
                 helo: str = "", dns: DnsConfig = _SYSTEM_DNS,
                 trusted_results: Sequence[str] = ()) -> AuthResult:
    """SPF (when the SMTP client IP is known), DKIM and DMARC of one message."""
    from_domain = _domain(from_domain)
    lookup = DnsLookup(dns)
    try:
        raw = normalize_line_endings(bytes(raw))
    except Exception:
        raw = b""
    if mail_from.strip() in ("", "<>"):
        identity = f"postmaster@{helo}" if helo else ""
    else:
        identity = mail_from.strip().strip("<>")
    spf_domain = _domain(identity.rpartition("@")[2])

    trusted = _trusted_results(raw, trusted_results, from_domain) if trusted_results else None
    if ip is not None and spf_domain:
        spf_result = _check_spf(lookup, ip, identity, helo)
    elif ip is None and trusted and trusted.spf:
        spf_result, spf_domain = trusted.spf, trusted.spf_domain or spf_domain
    else:
        spf_result = "none"

    dkim_results = _check_dkim(lookup, raw)
    if trusted:
        passing = {d for d, result in dkim_results if result == "pass"}
        dkim_results += [(d, r) for d, r in trusted.dkim if d not in passing]

    dmarc, policy = _check_dmarc(lookup, from_domain, spf_result, spf_domain, dkim_results)
    if trusted and trusted.dmarc and dmarc != "pass":
        if trusted.dmarc == "pass" or dmarc in ("none", "temperror"):
            dmarc, policy = trusted.dmarc, policy or trusted.dmarc_policy
    return AuthResult(from_domain=from_domain, spf=spf_result, spf_domain=spf_domain,
                      dkim=tuple(dkim_results), dmarc=dmarc, dmarc_policy=policy)


# -- SPF ---------------------------------------------------------------------------------

_spf_dns: contextvars.ContextVar[DnsLookup | None] = contextvars.ContextVar("spf_dns", default=None)
_spf_install = threading.Lock()


class _SpfLookup:
    """pyspf's DNSLookup contract ([((name, qtype), data)]) answered by our resolver; without
    one (a pyspf call that is not ours) by pyspf's own lookup, kept in ``fallback``."""

    fallback: Callable[..., list[Any]]

    def __call__(self, name: str, qtype: str, strict: bool = True,
                 timeout: float = 30) -> list[Any]:
        lookup = _spf_dns.get()
        if lookup is None:
            return self.fallback(name, qtype, strict, timeout)
        try:
            records = lookup.resolve(name, qtype)
        except DnsTempError as exc:
            raise spf.TempError(f"DNS {exc}") from None
        out: list[Any] = []
        for rdata in records:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                out.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                out.append(((name, qtype), rdata.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), rdata.strings))
        return out


_spf_lookup = _SpfLookup()


def _install_spf_lookup() -> None:
    with _spf_install:
        if spf.DNSLookup is not _spf_lookup:
            _spf_lookup.fallback = spf.DNSLookup
            spf.DNSLookup = _spf_lookup


def _check_spf(lookup: DnsLookup, ip: str, identity: str, helo: str) -> str:
    _install_spf_lookup()
    token = _spf_dns.set(lookup)
    try:
        budget = max(lookup.remaining(), 0.001)
        query = spf.query(i=ip, s=identity, h=helo or identity.rpartition("@")[2],
                          timeout=budget, querytime=budget)
        result = query.check()[0]
    except spf.TempError:
        return "temperror"
    except Exception:  # pyspf raises plain errors for an unparsable IP and the like
        return "permerror"
    finally:
        _spf_dns.reset(token)
    return result if result in SPF_RESULTS else "permerror"


# -- DKIM --------------------------------------------------------------------------------

def _check_dkim(lookup: DnsLookup, raw: bytes) -> list[tuple[str, str]]:
    try:
        message = dkimpy.DKIM(raw, logger=_QUIET, timeout=1)
        count = sum(1 for name, _ in message.headers if name.lower() == b"dkim-signature")
    except Exception:
        return []
    results = []
    for idx in range(min(count, MAX_DKIM_SIGNATURES)):
        results.append(_verify_one(lookup, message, idx))
    return results


def _verify_one(lookup: DnsLookup, message: dkimpy.DKIM, idx: int) -> tuple[str, str]:
    """(d=, result) of one signature. dkimpy answers only True/False (or raises), so the
    DNS function notes why a key was not usable."""
    problem: list[str] = []
    fetched: list[bool] = []

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        try:
            name = name.decode("ascii") if isinstance(name, bytes) else str(name)
            records = lookup.txt(name)
        except DnsTempError:
            problem.append("temperror")
            raise dkimpy.DnsTimeoutError("DNS lookup failed") from None
        except Exception:
            records = []
        if not records:
            problem.append("permerror")  # no key published
            return None
        try:
            dkimpy.evaluate_pk(name, records[0])
        except Exception:
            problem.append("permerror")  # a key that cannot be used
        fetched.append(True)
        return records[0]

    domain = _signature_domain(message.headers, idx)
    try:
        ok = message.verify(idx=idx, dnsfunc=dnsfunc)
    except dkimpy.ValidationError:
        # raised before the key lookup for a malformed signature, after it for a body that
        # does not match its hash
        return domain, "fail" if fetched and not problem else "permerror"
    except Exception:  # key too small, unknown algorithm, unparsable header
        return domain, "permerror"
    if ok:
        return domain, "pass"
    return domain, problem[0] if problem else "fail"


def _signature_domain(headers: Sequence[tuple[bytes, bytes]], idx: int) -> str:
    sigs = [value for name, value in headers if name.lower() == b"dkim-signature"]
    match = re.search(rb"(?:^|;)\s*d\s*=\s*([^;]*)", sigs[idx]) if idx < len(sigs) else None
    if not match:
        return ""
    return _domain(re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace"))


class _Quiet:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


_QUIET = _Quiet()


# -- DMARC -------------------------------------------------------------------------------

def _check_dmarc(lookup: DnsLookup, from_domain: str, spf_result: str, spf_domain: str,
                 dkim_results: list[tuple[str, str]]) -> tuple[str, str]:
    """(dmarc, policy): the record at _dmarc.<From domain>, else at the organizational
    domain (whose sp= then applies), RFC 7489 6.6.3."""
    if not from_domain:
        return "none", ""
    org = organizational_domain(from_domain)
    record: dict[str, str] | None = None
    subdomain = False
    for name in dict.fromkeys((from_domain, org)):
        try:
            record = _dmarc_record(lookup.txt(f"_dmarc.{name}"))
        except DnsTempError:
            return "temperror", ""
        if record is not None:
            subdomain = name != from_domain
            break
    if record is None:
        return "none", ""
    policy = record.get("p", "")
    if subdomain and record.get("sp") in ("none", "quarantine", "reject"):
        policy = record["sp"]
    if policy not in ("none", "quarantine", "reject"):
        policy = "none"  # RFC 7489 6.6.3: an unusable p= with a record means "none"
    strict_dkim = record.get("adkim") == "s"
    strict_spf = record.get("aspf") == "s"
    dkim_ok = any(result == "pass" and aligned(d, from_domain, strict=strict_dkim)
                  for d, result in dkim_results)
    spf_ok = spf_result == "pass" and aligned(spf_domain, from_domain, strict=strict_spf)
    return ("pass" if dkim_ok or spf_ok else "fail"), policy


def _dmarc_record(texts: list[bytes]) -> dict[str, str] | None:
    """Tags of the single v=DMARC1 record; None when there is none or more than one."""
    found = [t for t in texts if re.match(rb"v\s*=\s*DMARC1\s*(;|\Z)", t)]
    if len(found) != 1:
        return None
    tags: dict[str, str] = {}
    for part in found[0].decode("ascii", "replace").split(";")[:32]:
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip().lower())
    return tags


@functools.lru_cache(maxsize=4096)  # the public suffix walk, 0.1 ms, for a few domains a day
def organizational_domain(domain: str) -> str:
    """The registrable domain (public suffix + one label); two labels for unknown TLDs."""
    domain = _domain(domain)
    if not domain:
        return ""
    try:
        org = publicsuffix2.get_sld(domain, strict=True)
    except Exception:
        org = None
    return org or ".".join(domain.split(".")[-2:])


def aligned(domain: str, from_domain: str, *, strict: bool = False) -> bool:
    """DMARC identifier alignment: same domain (strict) or same organizational domain."""
    domain, from_domain = _domain(domain), _domain(from_domain)
    if not domain or not from_domain:
        return False
    if strict:
        return domain == from_domain
    return organizational_domain(domain) == organizational_domain(from_domain)


# -- trusted Authentication-Results ------------------------------------------------------

@dataclass
class _Trusted:
    spf: str = ""
    spf_domain: str = ""
    dkim: tuple[tuple[str, str], ...] = ()
    dmarc: str = ""
    dmarc_policy: str = ""


def _trusted_results(raw: bytes, trusted_ids: Sequence[str], from_domain: str) -> _Trusted | None:
    """Results from the top-most Authentication-Results header whose authserv-id is
    trusted. A lower header with the same id is not read: the sender may have forged it."""
    wanted = {i.strip().lower() for i in trusted_ids if i.strip()}
    try:
        fields, _ = split_message(raw[:MAX_HEADER_BYTES])
    except Exception:
        return None
    for name, value in fields:
        if name.strip().lower() != b"authentication-results":
            continue
        text = value.replace(b"\r\n", b"").decode("utf-8", "replace").strip()
        head = re.sub(r"\([^()]*\)", " ", text.partition(";")[0]).split()
        if not head or head[0].lower() not in wanted:
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(text)
        except Exception:
            return None
        return _read_results(parsed, from_domain)
    return None


def _read_results(parsed: authres.AuthenticationResultsHeader, from_domain: str) -> _Trusted:
    out = _Trusted()
    dkim: list[tuple[str, str]] = []
    for result in list(getattr(parsed, "results", []))[:20]:
        method = str(result.method).lower()
        value = str(result.result).lower()
        props = {f"{p.type}.{p.name}".lower(): str(p.value) for p in result.properties}
        if method == "spf" and not out.spf:
            out.spf = value if value in SPF_RESULTS else "permerror"
            source = props.get("smtp.mailfrom") or props.get("smtp.helo", "")
            out.spf_domain = _domain(source.rpartition("@")[2])
        elif method == "dkim" and len(dkim) < MAX_DKIM_SIGNATURES and value != "none":
            d = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if _domain(d):
                dkim.append((_domain(d), value if value in DKIM_RESULTS else "neutral"))
        elif method == "dmarc" and not out.dmarc:
            if _domain(props.get("header.from", "")) == from_domain:
                out.dmarc = value if value in ("pass", "fail", "none", "temperror") else "none"
                match = re.search(r"\bp=(none|quarantine|reject)\b",
                                  str(getattr(result, "reason", "") or "")
                                  + " " + str(getattr(result, "result_comment", "") or ""),
                                  re.IGNORECASE)
                out.dmarc_policy = match.group(1).lower() if match else ""
    out.dkim = tuple(dkim)
    return out


# -- small helpers -----------------------------------------------------------------------

def _domain(value: str) -> str:
    """A lowercase DNS name, or '' when `value` is not one (hostile input stops here)."""
    value = str(value).strip().rstrip(".").lower()
    if len(value) > 253 or not _DOMAIN.match(value):
        return ""
    return value


def _safe(domain: str) -> str:
    return _domain(domain) or "-"


def _prop(name: str, domain: str) -> str:
    domain = _domain(domain)
    return f" {name}={domain}" if domain else ""
