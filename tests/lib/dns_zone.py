"""A tiny authoritative DNS server on loopback, for tests that must not touch the network.

    with DnsZone({"example.com": [("TXT", "v=spf1 ip4:127.0.0.1 -all")]}) as zone:
        authenticate(..., dns=zone.config)

Served over UDP and TCP on the same free port (dnspython retries over TCP when an answer
is truncated). A name in the dict answers NOERROR (empty when the type is missing), any
other name NXDOMAIN. `records` may be changed while the server runs; `queries` lists what
was asked, so a test can count lookups. Record types: TXT (long values are cut into
255-byte strings), A, AAAA, MX ("10 mx.example.com"), CNAME, and ("SERVFAIL", "") to make
a name fail.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Mapping

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import DNSServer

from mailroom.lib.dns_lookup import DnsConfig

Records = Mapping[str, Iterable[tuple[str, str]]]


class _Quiet:
    """dnslib prints every packet by default."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _rdata(rtype: str, value: str):
    if rtype == "TXT":
        data = value.encode("utf-8")
        return TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        preference, _, host = value.partition(" ")
        return MX(host, int(preference))
    if rtype == "CNAME":
        return CNAME(value)
    raise ValueError(f"unsupported record type {rtype}")


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


class _ZoneResolver:
    def __init__(self, zone: DnsZone):
        self.zone = zone

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname)
        qtype = QTYPE[request.q.qtype]
        name = _norm(qname)
        self.zone.queries.append((name, qtype))
        if self.zone.delay:
            time.sleep(self.zone.delay)
        entries = self.zone.records.get(name)
        if entries is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        entries = list(entries)
        if any(rtype == "SERVFAIL" for rtype, _ in entries):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        for rtype, value in entries:
            if rtype == qtype or (rtype == "CNAME" and qtype != "CNAME"):
                reply.add_answer(RR(qname, getattr(QTYPE, rtype), rdata=_rdata(rtype, value),
                                    ttl=60))
        return reply


class DnsZone:
    """In-memory zone served on 127.0.0.1; `config` points a DnsConfig at it."""

    def __init__(self, records: Records | None = None, *, timeout: float = 2.0,
                 delay: float = 0.0):
        self.records: dict[str, list[tuple[str, str]]] = {
            _norm(name): list(entries) for name, entries in (records or {}).items()}
        self.queries: list[tuple[str, str]] = []
        self.delay = delay
        self.timeout = timeout
        self.port = 0
        self._servers: list[DNSServer] = []

    def add(self, name: str, rtype: str, value: str) -> None:
        self.records.setdefault(_norm(name), []).append((rtype, value))

    @property
    def config(self) -> DnsConfig:
        return DnsConfig(nameservers=("127.0.0.1",), port=self.port, timeout=self.timeout)

    def start(self) -> DnsZone:
        resolver = _ZoneResolver(self)
        for _ in range(20):  # the free UDP port may be taken for TCP: try another
            udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=_Quiet())
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True,
                                logger=_Quiet())
            except OSError:
                udp.server.server_close()
                continue
            break
        else:
            raise RuntimeError("no free port for both UDP and TCP on 127.0.0.1")
        self.port = port
        self._servers = [udp, tcp]
        for server in self._servers:
            server.server.daemon_threads = True
            # a short poll interval: shutdown() waits for it, and tests start many zones
            threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.02},
                             daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> DnsZone:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def closed_port_config(timeout: float = 1.0) -> DnsConfig:
    """A DnsConfig aimed at a loopback port nobody listens on: the "DNS is down" case."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return DnsConfig(nameservers=("127.0.0.1",), port=port, timeout=timeout)


__all__ = ["DnsZone", "closed_port_config"]
