"""A 4,000-recipient campaign across two `mailroom worker --steps campaigns,send` processes.

One database (PostgreSQL; a SQLite file too), a real aiosmtpd sink in this process. The
campaign is held until both workers run, then both queue (the `campaigns` step) and send
(the `send` step) it. One worker is killed with SIGKILL mid-run — one with mails in flight
while the campaign is still being queued if the database polls catch that moment (usual on
SQLite), else one mid-send once 2,500 mails went out — its leases (mails and campaign) are
expired (what the lease time would do) and a new worker takes over. Every subscribed
recipient gets exactly one Message-ID; nobody suppressed or unsubscribed gets anything; a
Message-ID that arrives twice belongs to a mail the killed worker had in flight, and every
such mail is flagged (`was_uncertain`), as the outbox flags them.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest

from tests import premigrated
from tests.conftest import NEEDS_POSTGRES
from tests.core.test_processes import REPO, mailroom, stop, wait_for
from tests.outgoing.smtp_peer import SmtpPeer
from tests.outgoing.test_crash import SendScenario
from tests.outgoing.test_workers_pg import postgres_url  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

COUNT = 4_000  # the 100,000-recipient run is bench/campaign's; here: the kill, at scale
FIRST_KILL = 500  # mails at the sink before any kill
KILL_AFTER = 2_500  # mails sent before the kill, when queueing was too quick to catch

SETUP = """
from django.core.management import call_command
from mailroom.campaigns.models import Campaign, MailingList, Subscription, Suppression
from mailroom.contacts.models import Partner
from mailroom.core.models import Company
from mailroom.outgoing.models import MailServer
from mailroom.routing.models import AliasDomain
call_command("migrate", interactive=False, verbosity=0)
company = Company.objects.create(name="Acme")
AliasDomain.objects.create(company=company, name="acme.example")
server = MailServer.objects.create(company=company, name="sink", host="127.0.0.1", port={port},
                                   security="none", auth="none", purpose="both")
news = MailingList.objects.create(company=company, name="News")
people = [(f"c{{n}}@client.example", "subscribed") for n in range({count})]
people += [(f"suppressed{{n}}@client.example", "subscribed") for n in range(5)]
people += [(f"gone{{n}}@client.example", "unsubscribed") for n in range(5)]
partners = Partner.objects.bulk_create(
    [Partner(company=company, email=email, name=f"Person {{email.split('@')[0]}}")
     for email, _ in people], batch_size=1000)
Subscription.objects.bulk_create(
    [Subscription(company=company, mailing_list=news, partner=partner, email=email,
                  status=status) for partner, (email, status) in zip(partners, people)],
    batch_size=1000)
Suppression.objects.bulk_create([Suppression(company=company, reason="manual",
                                             email=f"suppressed{{n}}@client.example")
                                 for n in range(5)])
campaign = Campaign.objects.create(
    company=company, name="Spring news", subject="News for {{{{ contact.first_name }}}}",
    email_from="Acme News <news@acme.example>", layout="plain", lang="en_US", server=server,
    body_html='<p>Hello {{{{ contact.name }}}},</p><p><a href="https://acme.example/sale">Sale</a></p>',
    state="preparing", lease_owner="held", lease_expires_at="2999-01-01T00:00:00Z")
campaign.lists.set([news])
"""


class CampaignScenario(SendScenario):
    """SendScenario whose workers run the campaign step beside the send step."""

    def start_worker(self, name: str) -> subprocess.Popen:
        with (self.tmp / f"{name}.log").open("w") as out:
            proc = subprocess.Popen(
                mailroom("worker", "--steps", "campaigns,send", "--name", name),
                env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.workers.append((name, proc))
        return proc

    def release_campaign_when_running(self, timeout: float = 60) -> None:
        wait_for(lambda: all("running steps" in (self.tmp / f"{name}.log").read_text()
                             for name, _ in self.workers), timeout, "the workers to start",
                 procs=self.workers)
        self.query("UPDATE campaigns_campaign SET lease_owner = '', lease_expires_at = NULL")

    def victim(self, at_sink: int) -> str | None:
        """The worker to kill, once FIRST_KILL mails reached the sink: one with mails in
        flight while the campaign is still being queued; or, when queueing was too quick to
        catch, one with mails in flight once KILL_AFTER mails went out."""
        if at_sink < FIRST_KILL:
            return None
        state, queued = self.query("SELECT state, queued FROM campaigns_campaign")[0]
        sending = dict(self.query("SELECT lease_owner, COUNT(*) FROM outgoing_outgoingmail "
                                  "WHERE state = 'sending' GROUP BY lease_owner"))
        if state == "preparing" and queued < COUNT - 1000:
            return next((name for name in ("w1", "w2") if sending.get(name)), None)
        if state == "sending" and self.sent() >= KILL_AFTER:
            return next((name for name in ("w1", "w2") if sending.get(name)), None)
        return None

    def sent(self) -> int:
        return self.query("SELECT COUNT(*) FROM outgoing_outgoingmail WHERE state = 'sent'")[0][0]

    def campaign(self) -> tuple[str, str, int, int]:
        return self.query("SELECT state, state_reason, queued, total FROM campaigns_campaign")[0]


@pytest.fixture
def peer():
    with SmtpPeer() as sink:
        yield sink


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=NEEDS_POSTGRES)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return premigrated.sqlite_url(tmp_path / "mailroom.sqlite3")
    return request.getfixturevalue("postgres_url")


def test_a_4000_recipient_campaign_on_two_workers_survives_a_kill_9(tmp_path, peer,
                                                                       database_url):
    scenario = CampaignScenario(tmp_path, database_url, peer)
    timings = {}
    try:
        started = time.monotonic()
        scenario.shell(SETUP.format(port=peer.port, count=COUNT), "setup", timeout=300)
        timings["setup"] = time.monotonic() - started
        scenario.start_worker("w1")
        scenario.start_worker("w2")
        scenario.release_campaign_when_running()
        started = time.monotonic()

        chosen = []
        try:
            wait_for(lambda: chosen.append(scenario.victim(len(peer.messages))) or chosen[-1],
                     240, "a worker to kill mid-campaign", procs=scenario.workers)
        except AssertionError as error:
            raise AssertionError(f"{error}: campaign {scenario.campaign()}, "
                                 f"{len(peer.messages)} at the sink, {scenario.states()}\n"
                                 f"{scenario.logs()}") from None
        victim = chosen[-1]
        survivor = {"w1", "w2"}.difference([victim]).pop()
        killed = dict(scenario.workers)[victim]
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        scenario.workers.remove((victim, killed))
        state_at_kill, _, queued_at_kill, _ = scenario.campaign()
        in_flight = {row[0] for row in scenario.query(
            "SELECT message_id FROM outgoing_outgoingmail WHERE state = 'sending' "
            "AND lease_owner = ?", (victim,))}
        delivered_before = Counter(peer.message_ids())
        assert state_at_kill in ("preparing", "sending"), state_at_kill

        # the leases run out (what their time would do), a new worker takes over
        scenario.query("UPDATE outgoing_outgoingmail SET lease_expires_at = '2000-01-01' "
                       "WHERE state = 'sending' AND lease_owner = ?", (victim,))
        scenario.query("UPDATE campaigns_campaign SET lease_expires_at = '2000-01-01' "
                       "WHERE lease_owner = ?", (victim,))
        scenario.start_worker("w3")
        wait_for(lambda: scenario.campaign()[0] not in ("preparing", "sending"), 300,
                 f"the campaign to finish: {scenario.campaign()} {scenario.states()}",
                 procs=scenario.workers)
        timings["run"] = time.monotonic() - started
        codes = [stop(proc, timeout=30) for _, proc in scenario.workers]
    finally:
        scenario.kill_all()
    assert codes == [0, 0], scenario.logs()

    state, reason, queued, total = scenario.campaign()
    assert (state, queued, total) == ("done", COUNT, COUNT), reason
    rows = scenario.query("SELECT message_id, state, was_uncertain FROM outgoing_outgoingmail")
    assert len(rows) == COUNT and {s for _, s, _ in rows} == {"sent"}
    traces = scenario.query("SELECT status, COUNT(*) FROM campaigns_campaignrecipient "
                            "WHERE mail_id IS NOT NULL GROUP BY status")
    assert traces == [("sent", COUNT)]

    at_sink = Counter(peer.message_ids())
    assert len(at_sink) == COUNT and {mid for mid, _, _ in rows} == set(at_sink)
    delivered_to = {address.lower() for _, address in peer.deliveries()}
    assert delivered_to == {f"c{n}@client.example" for n in range(COUNT)}
    per_address = Counter(address.lower() for mid, address in set(peer.deliveries()))
    assert set(per_address.values()) == {1}, "a recipient got two different mails"

    flagged = {mid for mid, _, uncertain in rows if uncertain}
    assert flagged == in_flight
    twice = {mid for mid, n in at_sink.items() if n > 1}
    assert twice <= in_flight, "a duplicate of a mail that was not in flight"
    assert all(n <= 2 for n in at_sink.values())
    assert twice == {mid for mid in in_flight if delivered_before[mid]}
    by_worker = dict(scenario.query("SELECT worker, COUNT(*) FROM outgoing_sendattempt "
                                    "GROUP BY worker"))
    assert survivor in by_worker and set(by_worker) <= {"w1", "w2", "w3"}, by_worker
    print(f"\n{database_url.split(':')[0]}: setup {timings['setup']:.1f}s, run "
          f"{timings['run']:.1f}s; kill at {len(delivered_before)} mails, campaign "
          f"{state_at_kill} ({queued_at_kill} queued); {len(in_flight)} in flight, "
          f"{len(twice)} twice; killed {victim}; sends by worker {by_worker}")
