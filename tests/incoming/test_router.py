"""The router's runner end to end on stored messages: the quarantine and reprocessing,
hostile input, the dry run, batches and leases. Each rule has its own file in rules/."""

from __future__ import annotations

import pytest

from mailroom.business.crm.models import Lead
from mailroom.incoming.models import InboundMail
from mailroom.outgoing.models import OutgoingMail
from tests.incoming.conftest import message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_a_message_that_fails_is_quarantined_and_can_be_reprocessed(deliver, settings, mia):
    from mailroom.incoming.router import route
    from mailroom.incoming.services import raw_bytes, reprocess

    settings.MAILROOM_INBOUND_MAX_PARTS = 5
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(20))
    raw = message(content_type='multipart/mixed; boundary="b"', body=parts + "--b--")
    mail = deliver(raw)
    assert mail.state == InboundMail.State.QUARANTINED
    assert "part" in mail.error.lower() and not Lead.objects.exists()
    assert raw_bytes(mail) == raw.encode()  # never lost
    settings.MAILROOM_INBOUND_MAX_PARTS = 1000
    assert reprocess([mail], actor=mia) == 1
    mail.refresh_from_db()
    route(mail)
    mail.refresh_from_db()
    assert mail.decision == D.CREATED and Lead.objects.count() == 1


def test_hostile_ten_thousand_part_message_is_quarantined_by_the_part_limit(deliver):
    parts = "".join("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(10_000))
    mail = deliver(message(content_type='multipart/mixed; boundary="b"',
                           body=parts + "--b--"))
    assert mail.state == InboundMail.State.QUARANTINED
    assert "more than 1,000 parts" in mail.reason  # the parser's TooManyParts, in words


def test_dry_run_shows_the_deciding_rule_and_changes_nothing(acme, domain):
    from mailroom.incoming.router import dry_run

    ctx = dry_run(company=acme, sender="grace@navy.example", recipient="sales@acme.test")
    assert ctx.trace[-1]["rule"] == "post"
    assert "Would create a Lead" in ctx.trace[-1]["note"]
    refused = dry_run(company=acme, sender="grace@navy.example", recipient="x@acme.test")
    assert refused.trace[-1]["decision"] == D.REFUSED
    assert not Lead.objects.exists() and not InboundMail.objects.exists()
    assert not OutgoingMail.objects.exists()


def test_route_pending_routes_a_batch_and_reports_how_many(acme, domain):
    from mailroom.incoming.router import route_pending
    from mailroom.incoming.services import accept

    for number in range(3):
        accept(message(subject=f"m{number}").encode(), company=acme, source="api",
               envelope_to=["sales@acme.test"])
    assert route_pending("t") == 3
    assert route_pending("t") == 0
    assert Lead.objects.count() == 3


def test_a_claimed_batch_is_leased_for_a_minute_and_renewed_only_while_held(acme, domain):
    """A router that dies leaves its batch for about a minute (it was five); the heartbeat of
    a live one extends only the messages it still holds and has not routed yet."""
    from datetime import timedelta

    from django.utils import timezone

    from mailroom.incoming.router import claim, renew, route
    from mailroom.incoming.services import accept

    for number in range(3):
        accept(message(subject=f"m{number}").encode(), company=acme, source="api",
               envelope_to=["sales@acme.test"])
    first, second, third = claim("a")
    after = timezone.now()
    assert all(m.lease_owner == "a" and m.lease_expires_at <= after + timedelta(seconds=60)
               for m in (first, second, third))
    # the second one's lease ran out and another router took it; the third is routed
    InboundMail.objects.filter(pk=second.pk).update(lease_owner="b")
    route(third)

    assert renew("a", [first.pk, second.pk, third.pk]) == {first.pk}

    leases = dict(InboundMail.objects.values_list("pk", "lease_expires_at"))
    assert leases[first.pk] > first.lease_expires_at
    assert leases[second.pk] == second.lease_expires_at and leases[third.pk] is None


def test_a_message_whose_stored_copy_is_gone_is_quarantined_and_holds_up_nothing(acme, domain):
    """The blob was lost (a disk restored from an old backup, a bucket emptied by hand): that
    message is quarantined with the reason, and the rest of its batch is routed."""
    from mailroom.core.blobs import get_store
    from mailroom.incoming.router import route_pending
    from mailroom.incoming.services import accept

    lost, kept = (accept(message(subject=subject).encode(), company=acme, source="api",
                         envelope_to=["sales@acme.test"]) for subject in ("Lost", "Kept"))
    get_store().path(lost.raw_sha256).unlink()

    assert route_pending("t") == 2
    lost.refresh_from_db()
    kept.refresh_from_db()
    assert lost.state == "quarantined" and "cannot be read" in lost.error
    assert kept.decision == "created"


def test_a_blob_store_that_does_not_answer_is_tried_again_later_then_quarantined(
        acme, domain, monkeypatch):
    from mailroom.core.blobs import BlobUnreachable
    from mailroom.incoming.router import route, runner
    from mailroom.incoming.services import accept

    mail = accept(message().encode(), company=acme, source="api",
                  envelope_to=["sales@acme.test"])

    def down(mail):
        raise BlobUnreachable("The bucket did not answer within 30 s.")

    monkeypatch.setattr(runner, "raw_bytes", down)
    route(mail)
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == ("received", 1)
    assert "did not answer" in mail.error and mail.lease_expires_at is not None
    for _ in range(runner.MAX_TRANSIENT_ATTEMPTS - 1):
        route(mail)
        mail.refresh_from_db()
    assert mail.state == "quarantined"
    assert mail.error.startswith("The blob store kept failing: The bucket did not answer")
