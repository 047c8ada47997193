"""`decide(job, now)`: what a sender pass means for one mail, without a database.

No test here is marked for database access: pytest-django refuses any query, so these prove
the decision is pure. Rows are unsaved model instances with explicit primary keys.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailroom.outgoing.models import FailureType, MailServer, OutgoingMail, OutgoingRecipient
from mailroom.outgoing.sending.decide import RetryClock, decide
from mailroom.outgoing.sending.jobs import Job
from mailroom.outgoing.smtp.smtp_errors import RecipientResult

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
State = OutgoingMail.State
Status = OutgoingRecipient.Status
LIFETIME = timedelta(days=4)


def make_job(*addresses: str, **mail_fields) -> Job:
    mail_fields.setdefault("created_at", NOW - timedelta(minutes=5))
    mail = OutgoingMail(pk=1, subject="Invoice", email_from="billing@acme.example",
                        **mail_fields)
    recipients = [OutgoingRecipient(pk=10 + i, mail_id=1, address=a)
                  for i, a in enumerate(addresses or ("ann@example.com",))]
    return Job(mail, recipients, previous_state=State.OUTGOING)


def accepted(job: Job, index: int) -> None:
    r = job.recipients[index]
    job.results[r.pk] = RecipientResult(r.address, True, code=250, reply="2.0.0 queued")
    job.attempted = True


def refused(job: Job, index: int, *, temporary: bool, reason: str = "Mailbox full") -> None:
    r = job.recipients[index]
    job.results[r.pk] = RecipientResult(r.address, False, code=452 if temporary else 550,
                                        temporary=temporary, reason=reason,
                                        failure_type=FailureType.REJECTED)
    job.attempted = True


def test_every_recipient_accepted_is_sent_with_no_reason():
    job = make_job("ann@example.com", "bob@example.com")
    job.used_server = MailServer(pk=7, name="smtp")
    accepted(job, 0)
    accepted(job, 1)

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert (settlement.state, settlement.reason, settlement.failure_type) == (State.SENT, "", "")
    assert settlement.sent_at == NOW and settlement.attempt_count == 1
    assert settlement.used_server_id == 7
    assert {pk: f["status"] for pk, f in settlement.recipients.items()} == {
        10: Status.SENT, 11: Status.SENT}
    assert not settlement.notify_author and not settlement.delete


def test_partly_sent_is_sent_and_counts_who_was_not_reached():
    job = make_job("ann@example.com", "bob@example.com")
    accepted(job, 0)
    refused(job, 1, temporary=False, reason="No such user")

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert settlement.state == State.SENT
    assert settlement.reason == "1 of 2 recipients not reached: No such user"
    assert settlement.recipients[11]["status"] == Status.FAILED


def test_a_temporary_refusal_defers_with_the_backoff_of_its_attempt_count():
    job = make_job(attempt_count=2)
    refused(job, 0, temporary=True)

    settlement = decide(job, NOW, retry_at=RetryClock(NOW, rand=lambda: 0.0),
                        lifetime=LIFETIME)

    assert settlement.state == State.DEFERRED and settlement.attempt_count == 3
    assert settlement.next_attempt_at == NOW + timedelta(minutes=4)  # 1, 2, 4 minutes
    assert settlement.reason == "Mailbox full"
    assert settlement.recipients[10]["status"] == Status.PENDING
    assert not settlement.notify_author


def test_one_retry_time_per_attempt_count_in_a_pass():
    clock = RetryClock(NOW)
    first, second = make_job(attempt_count=1), make_job(attempt_count=1)
    refused(first, 0, temporary=True)
    refused(second, 0, temporary=True)

    assert (decide(first, NOW, retry_at=clock, lifetime=LIFETIME).next_attempt_at
            == decide(second, NOW, retry_at=clock, lifetime=LIFETIME).next_attempt_at)


def test_after_the_retry_lifetime_a_deferral_fails_for_good_and_the_author_is_told():
    job = make_job(created_at=NOW - LIFETIME, attempt_count=30)
    refused(job, 0, temporary=True, reason="Greylisted")

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert settlement.state == State.EXCEPTION
    assert settlement.reason == "Given up after 4 days of retries: Greylisted"
    assert settlement.recipients[10]["status"] == Status.FAILED
    assert settlement.recipients[10]["smtp_code"] == 452
    assert settlement.notify_author and settlement.author_notified


def test_every_recipient_refused_fails_and_the_author_is_told_only_once():
    job = make_job(author_notified=True)
    refused(job, 0, temporary=False, reason="No such user")

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert (settlement.state, settlement.reason) == (State.EXCEPTION, "No such user")
    assert not settlement.notify_author and settlement.author_notified


def test_expired_before_sending_fails_with_the_expiry_reason():
    job = make_job()
    job.fail(FailureType.EXPIRED, "Not sent before its expiry time (2026-03-02 09:00).")

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert settlement.state == State.EXCEPTION
    assert settlement.failure_type == FailureType.EXPIRED
    assert settlement.reason.startswith("Not sent before its expiry time")
    assert settlement.attempt_count == 0  # nothing went on the wire


def test_a_rate_limit_wait_is_deferred_until_then_and_is_not_an_attempt():
    job = make_job(attempt_count=1)
    job.wait(NOW + timedelta(seconds=40), "smtp has reached its rate limit")

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert settlement.state == State.DEFERRED
    assert settlement.next_attempt_at == NOW + timedelta(seconds=40)
    assert settlement.attempt_count == 1


def test_a_released_uncertain_mail_goes_back_as_it_was():
    job = make_job()
    job.previous_state = State.UNCERTAIN
    job.release()

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert settlement.released and settlement.state == State.UNCERTAIN
    assert settlement.mail_fields() == dict(state=State.UNCERTAIN, lease_owner="",
                                            lease_expires_at=None)


def test_sent_with_auto_delete_drops_the_row_and_its_attempts():
    job = make_job(auto_delete=True, on_sent="invoice")
    accepted(job, 0)
    job.attempts.append(object())  # the attempt row the lane left

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert settlement.delete and settlement.run_hooks and settlement.attempts == []


def test_chatter_notifications_follow_each_final_outcome():
    job = make_job("ann@example.com", "bob@example.com", "cy@example.com",
                   chatter_message_id=5)
    for recipient, partner in zip(job.recipients, (20, 21, 22), strict=True):
        recipient.partner_id = partner
    accepted(job, 0)
    refused(job, 1, temporary=False, reason="No such user")
    refused(job, 2, temporary=True)

    settlement = decide(job, NOW, lifetime=LIFETIME)

    assert settlement.notifications == [(5, 20, "sent", ""), (5, 21, "exception", "No such user")]


def test_deciding_changes_nothing_on_the_job():
    job = make_job()
    accepted(job, 0)

    decide(job, NOW, lifetime=LIFETIME)

    assert job.recipients[0].status == Status.PENDING
    assert job.mail.state == State.OUTGOING
