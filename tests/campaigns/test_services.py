"""Lists and subscriptions through the services: idempotent, audited, company-bound."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from mailroom.campaigns import services
from mailroom.campaigns.models import MailingList, Subscription
from mailroom.contacts.models import Partner
from mailroom.core.models import AuditLog

pytestmark = pytest.mark.django_db
Status = Subscription.Status


@pytest.fixture
def ada(acme):
    return Partner.objects.create(company=acme, name="Ada", email="Ada.Lovelace@Client.Example")


def test_save_list_is_audited_and_names_are_unique_per_company(acme, globex, mia, gina,
                                                                newsletter):
    assert AuditLog.objects.filter(action="campaigns.list.create",
                                   object_id=str(newsletter.pk)).exists()
    with pytest.raises(ValidationError) as exc:
        services.save_list(MailingList(company=acme, name="Newsletter"), actor=mia)
    assert "already has a list" in str(exc.value)
    # the same name in another company is another list
    services.save_list(MailingList(company=globex, name="Newsletter"), actor=gina)
    newsletter.description = "Monthly"
    services.save_list(newsletter, actor=mia)
    change = AuditLog.objects.get(action="campaigns.list.change")
    assert change.after == {"description": "Monthly"}


def test_archive_and_delete_are_audited(newsletter, mia, alice):
    services.archive_list(newsletter, actor=mia)
    newsletter.refresh_from_db()
    assert not newsletter.active
    assert AuditLog.objects.filter(action="campaigns.list.archive").count() == 1
    services.archive_list(newsletter, actor=mia)  # already archived: nothing more
    assert AuditLog.objects.filter(action="campaigns.list.archive").count() == 1
    services.delete_list(newsletter, actor=alice)
    assert not MailingList.objects.filter(pk=newsletter.pk).exists()
    assert AuditLog.objects.filter(action="campaigns.list.delete").exists()


def test_subscribe_is_idempotent_and_snapshots_the_address(newsletter, ada, mia):
    first = services.subscribe(newsletter, ada, actor=mia, consent_how="Asked at the desk",
                               consent_ip="192.0.2.7")
    again = services.subscribe(newsletter, ada, actor=mia, consent_how="Other")
    assert again.pk == first.pk
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 1
    assert first.status == Status.SUBSCRIBED
    assert first.email == "ada.lovelace@client.example"
    assert first.consent_how == "Asked at the desk" and first.consent_ip == "192.0.2.7"
    assert first.consent_at is not None


def test_double_opt_in_list_takes_new_people_as_unconfirmed(acme, mia, ada):
    confirm = services.save_list(MailingList(company=acme, name="Confirmed", double_opt_in=True),
                                 actor=mia)
    subscription = services.subscribe(confirm, ada, actor=mia, source="form")
    assert subscription.status == Status.UNCONFIRMED
    assert subscription.confirmed_at is None


def test_unsubscribe_is_idempotent_and_keeps_the_first_time(newsletter, ada, mia):
    subscription = services.subscribe(newsletter, ada, actor=mia)
    gone = services.unsubscribe(subscription, actor=mia)
    first_time = gone.unsubscribed_at
    assert gone.status == Status.UNSUBSCRIBED and first_time is not None
    again = services.unsubscribe(subscription, actor=mia)
    assert again.unsubscribed_at == first_time


def test_who_left_comes_back_only_with_their_new_consent(newsletter, ada, mia):
    subscription = services.subscribe(newsletter, ada, actor=mia)
    services.unsubscribe(subscription, actor=mia)
    with pytest.raises(ValidationError, match="left this list"):
        services.subscribe(newsletter, ada, actor=mia)
    back = services.subscribe(newsletter, ada, actor=mia, source="form", resubscribe=True,
                              consent_how="Ticked the box again")
    assert back.status == Status.SUBSCRIBED and back.unsubscribed_at is None


def test_blacklisted_contact_is_refused(newsletter, ada, mia):
    ada.is_blacklisted = True
    ada.save()
    with pytest.raises(ValidationError, match="blacklisted"):
        services.subscribe(newsletter, ada, actor=mia)


def test_set_status(newsletter, ada, mia):
    subscription = services.subscribe(newsletter, ada, actor=mia)
    assert services.set_status(subscription, Status.BOUNCED, actor=mia).status == Status.BOUNCED
    with pytest.raises(ValidationError):
        services.set_status(subscription, "gone", actor=mia)
    assert services.set_status(subscription, Status.UNSUBSCRIBED,
                               actor=mia).unsubscribed_at is not None


def test_office_users_cannot_change_lists_or_subscriptions(newsletter, ada, bob):
    with pytest.raises(PermissionDenied):
        services.save_list(MailingList(company=newsletter.company, name="Mine"), actor=bob)
    with pytest.raises(PermissionDenied):
        services.subscribe(newsletter, ada, actor=bob)
    with pytest.raises(PermissionDenied):
        services.delete_list(newsletter, actor=bob)


def test_another_company_cannot_touch_the_list(newsletter, ada, gina, globex):
    with pytest.raises(PermissionDenied):
        services.subscribe(newsletter, ada, actor=gina)
    with pytest.raises(PermissionDenied):
        services.archive_list(newsletter, actor=gina)
    assert not MailingList.objects.for_user(gina).filter(pk=newsletter.pk).exists()
    stranger = Partner.objects.create(company=globex, name="Zed", email="zed@globex.example")
    with pytest.raises(ValidationError, match="another company"):
        services.subscribe(newsletter, stranger, actor=None)
