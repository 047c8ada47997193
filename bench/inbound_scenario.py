"""One inbound run, in its own process so each database starts clean.

python -m bench.inbound_scenario --count N --workers W [--connections C]
The database and data dir come from MAILROOM_DATABASE_URL / MAILROOM_DATA_DIR.
Starts `mailroom gateway` and W `mailroom worker --steps router` processes, sends a mixed
corpus through SMTP on C connections while the workers route, and prints one JSON line:
the gateway's accept rate, the end-to-end routed rate, decisions, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import subprocess
import sys
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")


def setup(replies: int):
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from mailroom.business.crm.models import Lead
    from mailroom.contacts.models import Partner
    from mailroom.core.models import Company
    from mailroom.outgoing.services import enqueue
    from mailroom.routing.models import AliasDomain
    from mailroom.routing.services import ensure_default_aliases

    company = Company.objects.create(name="Acme Bench")
    domain = AliasDomain.objects.create(company=company, name="acme.bench")
    ensure_default_aliases(domain)
    sent = []
    for n in range(replies):  # mail we sent, that the corpus answers
        partner = Partner.objects.create(company=company, name=f"Customer {n}",
                                         email=f"customer{n}@client.example")
        lead = Lead.objects.create(company=company, name=f"Deal {n}", partner=partner)
        sent.append(enqueue(company=company, email_from="sales@acme.bench", to=[partner],
                            subject=f"Your quote {n}", text="Here.", record=lead))
    return [(m.pk, m.message_id, m.recipients.first().pk) for m in sent]


def run(count: int, workers: int, connections: int) -> dict:
    from tests.lib.dns_zone import DnsZone

    from bench.common import cpu_seconds, free_port, peak_rss_mb, wait_for_port
    from bench.inbound_corpus import corpus

    sent = setup(replies=min(200, max(1, count // 20)))
    messages = corpus(count, sent, domain="acme.bench")
    port = free_port()
    # sender authentication asks a DNS zone on loopback, as a local resolver would answer
    zone = DnsZone({"client.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
                    "_dmarc.client.example": [("TXT", "v=DMARC1; p=quarantine")]})
    zone.__enter__()
    # a few long connections carry the whole corpus: no per-connection message cap here
    env = dict(os.environ, MAILROOM_DNS_SERVERS=f"127.0.0.1:{zone.config.port}",
               MAILROOM_GATEWAY_MAX_MESSAGES_PER_CONNECTION="0")
    gateway = subprocess.Popen([sys.executable, "-m", "mailroom", "gateway", "--smtp",
                                f"127.0.0.1:{port}", "--lmtp", ""], env=env)
    routers = [subprocess.Popen([sys.executable, "-m", "mailroom", "worker", "--steps",
                                 "router", "--idle-sleep", "0.05"], env=env)
               for _ in range(workers)]
    try:
        wait_for_port(port, timeout=30)
        time.sleep(1.0)  # the routers are up too: what they used so far is start-up
        start_cpu = {p.pid: cpu_seconds(p.pid) for p in [gateway, *routers]}
        started = time.perf_counter()
        accepted_in = _send(port, messages, connections)
        accept_seconds = time.perf_counter() - started
        routed_seconds = _wait_routed(len(messages), started, timeout=max(120, count / 20))
        peaks = [peak_rss_mb(p.pid) for p in [gateway, *routers]]
        # CPU per message: what each side costs, whatever else the machine was doing (the
        # rates above move with it; these barely do)
        gateway_cpu = cpu_seconds(gateway.pid) - start_cpu[gateway.pid]
        router_cpu = sum(cpu_seconds(p.pid) - start_cpu[p.pid] for p in routers)
    finally:
        for proc in [gateway, *routers]:
            proc.terminate()
        for proc in [gateway, *routers]:
            proc.wait(timeout=30)
    from django.db.models import Count

    from mailroom.incoming.models import InboundMail

    decisions = dict(InboundMail.objects.values_list("decision").annotate(n=Count("id")))
    return {"count": len(messages), "accepted": accepted_in,
            "accept_per_s": len(messages) / accept_seconds,
            "routed_per_s": len(messages) / routed_seconds,
            "routed_seconds": routed_seconds, "decisions": decisions,
            "gateway_peak_mb": peaks[0], "router_peak_mb": max(peaks[1:]),
            "gateway_ms_per_msg": 1000 * gateway_cpu / len(messages),
            "router_ms_per_msg": 1000 * router_cpu / len(messages)}


def _send(port: int, messages: list[tuple[str, list[str], bytes]], connections: int) -> int:
    accepted = [0] * connections

    def client(index: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for sender, recipients, raw in messages[index::connections]:
                smtp.sendmail(sender, recipients, raw)
                accepted[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(accepted)


def _wait_routed(total: int, started: float, timeout: float) -> float:
    from django.db import close_old_connections

    from mailroom.incoming.models import InboundMail

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        done = InboundMail.objects.exclude(state=InboundMail.State.RECEIVED).count()
        if done >= total:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"only {done} of {total} routed within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.count, args.workers, args.connections)))


if __name__ == "__main__":
    main()
