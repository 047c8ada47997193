"""DNS for sender authentication (no Django): one resolver and one time budget per call.

`DnsLookup(DnsConfig(...))` answers the lookups of one `mailauth.authenticate()` call (SPF,
DKIM keys, DMARC records) within `DnsConfig.timeout` for all of them together; after that,
and on a timeout or a server failure, a lookup raises DnsTempError (the caller's temperror).
Answers are kept for their TTL in a cache shared by every call that asks the same servers,
and a cached answer is given without building a query (a router asks for the same few
sender domains all day).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver


@dataclass(frozen=True)
class DnsConfig:
    nameservers: tuple[str, ...] = ()  # e.g. ('127.0.0.1',); empty = the system resolver
    port: int = 53
    timeout: float = 3.0  # seconds for all lookups of one authenticate() call

    @classmethod
    def from_setting(cls, servers: str, timeout: float = 3.0) -> DnsConfig:
        """MAILROOM_DNS_SERVERS as written ("host[:port], …"; blank: the system's resolver).
        One port holds for all (dnspython asks every server on one port): the last given."""
        hosts, port = [], 53
        for entry in (s.strip() for s in (servers or "").split(",")):
            if not entry:
                continue
            host, _, maybe_port = (entry.rpartition(":") if entry.count(":") == 1
                                   else (entry, "", ""))
            hosts.append(host or entry)
            port = int(maybe_port) if maybe_port else port
        return cls(nameservers=tuple(hosts), port=port, timeout=timeout)


class DnsTempError(Exception):
    """A lookup could not be answered now (timeout, server failure, budget spent)."""


_caches: dict[tuple, dns.resolver.LRUCache] = {}
_caches_lock = threading.Lock()


def _cache_for(config: DnsConfig) -> dns.resolver.LRUCache:
    """Answers are kept for their TTL and shared by every call that asks the same servers:
    a router sees the same sender domains again and again (SPF, DKIM key, DMARC records)."""
    key = (config.nameservers, config.port)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            if len(_caches) > 16:
                _caches.clear()
            cache = _caches[key] = dns.resolver.LRUCache(max_size=20_000)
        return cache


class DnsLookup:
    """One resolver and one time budget for every lookup of an authenticate() call."""

    def __init__(self, config: DnsConfig):
        self.deadline = time.monotonic() + max(config.timeout, 0.0)
        try:
            resolver = dns.resolver.Resolver(configure=not config.nameservers)
        except Exception:  # no /etc/resolv.conf: every lookup is a temperror
            resolver = None
        if resolver is not None:
            if config.nameservers:
                resolver.nameservers = list(config.nameservers)
            resolver.port = config.port
            resolver.timeout = resolver.lifetime = max(config.timeout, 0.001)
            resolver.search = []
            resolver.use_search_by_default = False
            resolver.cache = _cache_for(config)
        self.resolver = resolver

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def resolve(self, name: str, rdtype: str) -> list:
        """The records of one type (empty for NXDOMAIN or no data); DnsTempError else."""
        left = self.remaining()
        if self.resolver is None or left <= 0:
            raise DnsTempError("no DNS resolver or DNS time budget spent")
        try:
            qname = dns.name.from_text(name)
        except Exception:  # not a DNS name: nothing can be published there
            return []
        cached = self._cached(qname, rdtype)
        if cached is not None:
            return cached
        try:
            answer = self.resolver.resolve(qname, rdtype, lifetime=left,
                                           raise_on_no_answer=False, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except Exception as exc:  # timeout, SERVFAIL, refused, bad answer, ...
            raise DnsTempError(f"{type(exc).__name__}") from exc
        return list(answer.rrset) if answer.rrset is not None else []

    def _cached(self, qname: dns.name.Name, rdtype: str) -> list | None:
        """A cached answer as resolve() would give it (dnspython's own cache lookups, without
        building a query first: a router asks for the same few domains all day)."""
        cache = self.resolver.cache if self.resolver is not None else None
        if cache is None:
            return None
        try:
            kind = dns.rdatatype.from_text(rdtype)
        except Exception:
            return None
        answer = cache.get((qname, kind, dns.rdataclass.IN))
        if answer is not None:
            return list(answer.rrset) if answer.rrset is not None else []
        answer = cache.get((qname, dns.rdatatype.ANY, dns.rdataclass.IN))
        if answer is not None and answer.response.rcode() == dns.rcode.NXDOMAIN:
            return []
        return None

    def txt(self, name: str) -> list[bytes]:
        return [b"".join(r.strings) for r in self.resolve(name, "TXT")]
