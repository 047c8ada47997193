"""Two router processes on one database route everything once, with one contact per new
sender: on SQLite they take turns on the write lock (core.turns), on PostgreSQL a new
contact's address is held until the transaction ends (core.contention.hold)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.core.test_processes import mailroom, mailroom_env, wait_for
from tests.outgoing.test_workers_pg import database_url, postgres_url  # noqa: F401 - fixtures

ACCEPT = textwrap.dedent("""
    import django; django.setup()
    from email.utils import formatdate
    from mailroom.core.models import Company
    from mailroom.incoming.services import accept
    from mailroom.routing.models import Alias, AliasDomain
    company = Company.objects.create(name="Acme")
    domain = AliasDomain.objects.create(company=company, name="acme.test")
    Alias.objects.create(company=company, domain=domain, local_part="sales",
                         record_type="crm.lead")
    for n in range(60):
        sender = f"person{n % 20}@prospect.example"  # 20 senders, three messages each
        raw = (f"From: {sender}\\r\\nTo: sales@acme.test\\r\\nSubject: Request {n}\\r\\n"
               f"Date: {formatdate()}\\r\\nMessage-ID: <r{n}@prospect.example>\\r\\n\\r\\n"
               f"Please call me back.\\r\\n").encode()
        accept(raw, company=company, source="api", envelope_from=sender,
               envelope_to=["sales@acme.test"])
""")
COUNT = textwrap.dedent("""
    import django, json; django.setup()
    from django.db.models import Count
    from mailroom.business.crm.models import Lead
    from mailroom.contacts.models import Partner
    from mailroom.incoming.models import InboundMail
    print(json.dumps({
        "left": InboundMail.objects.filter(state="received").count(),
        "states": sorted(map(list, InboundMail.objects.values_list("state", "decision",
                                                                   "attempts")
                             .annotate(n=Count("id")))),
        "leads": [Lead.objects.count(), len(set(Lead.objects.values_list("name", flat=True)))],
        "contacts": sorted(Partner.objects.filter(email__endswith="@prospect.example")
                           .values_list("email", flat=True))}))
""")


@pytest.mark.slow
def test_two_routers_route_each_message_once_with_one_contact_per_sender(
        tmp_path, database_url):  # noqa: F811 - a fixture
    env = mailroom_env(tmp_path, database_url)
    done = subprocess.run([sys.executable, "-c", ACCEPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    routers = [subprocess.Popen(mailroom("worker", "--steps", "router", "--idle-sleep", "0.05",
                                         "--nice", "0"), env=env) for _ in range(2)]

    def counts() -> dict:
        out = subprocess.run([sys.executable, "-c", COUNT], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    try:
        wait_for(lambda: counts()["left"] == 0, timeout=180,
                 what="both routers to route the 60 messages",
                 procs=[("router 1", routers[0]), ("router 2", routers[1])])
    finally:
        for router in routers:
            router.terminate()
        for router in routers:
            router.wait(timeout=30)
    found = counts()
    assert found["states"] == [["done", "created", 1, 60]]  # each once, by either router
    assert found["leads"] == [60, 60]
    # one contact per sender, not one per router: before, each router's batch read ahead
    # that a sender had none, and both made one
    assert found["contacts"] == sorted(f"person{n}@prospect.example" for n in range(20))
    if database_url.startswith("sqlite"):
        assert (tmp_path / "mailroom.sqlite3-turns").exists()
