"""The digest back office: list, add and change through the admin (saved by the service,
audited, KPIs and recipients checked), the preview for a chosen user, Send now, and who may
do what."""

from __future__ import annotations

from datetime import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from mailroom.core import kpis
from mailroom.core.kpis import Kpi, Unit
from mailroom.core.models import AuditLog
from mailroom.digests.models import Digest, DigestSend, DigestSubscription
from mailroom.digests.services import set_subscribed
from mailroom.outgoing.models import OutgoingMail
from tests.conftest import make_user
from tests.digests.conftest import make_digest

pytestmark = pytest.mark.django_db
LIST = reverse("admin:digests_digest_changelist")
ADD = reverse("admin:digests_digest_add")


def change_url(digest):
    return reverse("admin:digests_digest_change", args=[digest.pk])


@pytest.fixture
def invoice_kpi():
    """A KPI only users who may view invoices see."""
    kpi = Kpi(key="test.invoiced", group="Invoicing", label="Invoiced amount",
              unit=Unit.MONEY, compute=lambda company, start, end: 1234,
              permission="invoicing.view_invoice", description="Invoices issued in the period")
    kpis._REGISTRY[kpi.key] = kpi
    yield kpi
    kpis._REGISTRY.pop(kpi.key, None)


@pytest.fixture
def sam(acme):
    """A sales user: may see leads and digests, not invoices."""
    group = Group.objects.create(name="Sales only")
    group.permissions.set(Permission.objects.filter(
        content_type__app_label__in=["crm", "digests"], codename__in=["view_lead",
                                                                    "view_digest"]))
    user = make_user("sam", [acme], "Sales only")
    user.email = "sam@acme.example"
    user.save(update_fields=["email"])
    return user


def form_data(**overrides):
    data = {"name": "Monday pulse", "periodicity": "weekly", "send_time": "08:00",
            "active": "on", "kpis": ["crm.new_leads"], "recipients": []}
    data.update(overrides)
    return data


def test_the_list_shows_next_run_in_company_time_counts_and_chips(acme, alice, bob,
                                                                  client_for):
    digest = make_digest(acme, recipients=[alice, bob], send_time=time(8, 0))
    Digest.objects.filter(pk=digest.pk).update(slowed_from="daily")
    page = client_for(alice).get(LIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Weekly pulse" in html
    assert "08:00" in html and "Mon " in html  # weekly: Monday 08:00 Europe/Paris
    assert "slowed to weekly" in html
    assert "Active" in html


def test_adding_a_digest_goes_through_the_service_and_is_audited(acme, alice, bob,
                                                                  client_for):
    client = client_for(alice)
    page = client.get(ADD)
    assert page.status_code == 200
    assert "CRM" in page.content.decode() and "New leads" in page.content.decode()
    response = client.post(ADD, form_data(recipients=[alice.pk, bob.pk]))
    assert response.status_code == 302, response.content.decode()[:3000]
    digest = Digest.objects.get(name="Monday pulse")
    assert digest.company == acme and digest.kpis == ["crm.new_leads"]
    assert digest.next_run_at is not None  # scheduled by the service
    assert set(digest.subscriptions.values_list("user__username", flat=True)) == {"alice",
                                                                                 "bob"}
    audit = AuditLog.objects.get(action="digest.create")
    assert audit.actor == alice and audit.after["name"] == "Monday pulse"
    assert audit.after["recipients"] == ["alice", "bob"]


def test_a_change_of_recipients_is_audited_with_who_before_and_after(acme, alice, bob,
                                                                     client_for):
    digest = make_digest(acme, recipients=[alice, bob])
    response = client_for(alice).post(change_url(digest), form_data(recipients=[alice.pk]))
    assert response.status_code == 302
    audit = AuditLog.objects.get(action="digest.update")
    assert (audit.actor, audit.before["recipients"], audit.after["recipients"]) == (
        alice, ["alice", "bob"], ["alice"])


def test_an_unknown_kpi_is_a_red_line(acme, alice, client_for):
    response = client_for(alice).post(ADD, form_data(kpis=["crm.new_leads", "nope.nothing"]))
    assert response.status_code == 200
    assert "Unknown KPI: nope.nothing" in response.content.decode()
    assert not Digest.objects.exists()


def test_a_recipient_of_another_company_is_refused(acme, alice, charlie, client_for):
    response = client_for(alice).post(ADD, form_data(recipients=[alice.pk, charlie.pk]))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Digest.objects.exists()


def test_changing_keeps_a_self_unsubscribed_user_out_and_shows_it(acme, alice, bob,
                                                                  client_for):
    digest = make_digest(acme, recipients=[alice, bob])
    set_subscribed(digest, bob, False, actor=bob)
    client = client_for(alice)
    page = client.get(change_url(digest))
    assert page.status_code == 200
    html = page.content.decode()
    assert "unsubscribed themselves" in html
    assert 'id="chatter"' in html  # the digest's conversation beside the form
    response = client.post(change_url(digest), form_data(
        name="Weekly pulse", periodicity="daily", recipients=[alice.pk, bob.pk]))
    assert response.status_code == 302
    digest.refresh_from_db()
    assert digest.periodicity == "daily"
    assert not DigestSubscription.objects.get(digest=digest, user=bob).subscribed
    audit = AuditLog.objects.get(action="digest.update")
    assert audit.before["periodicity"] == "weekly" and audit.after["periodicity"] == "daily"


def test_the_kpi_picker_groups_by_app_with_descriptions(acme, alice, client_for,
                                                        invoice_kpi):
    html = client_for(alice).get(ADD).content.decode()
    assert '<legend class="mr-dg-group-title">Invoicing</legend>' in html
    assert '<legend class="mr-dg-group-title">CRM</legend>' in html
    assert "Invoices issued in the period" in html


def test_preview_for_a_chosen_user_shows_only_their_kpis(acme, alice, sam, client_for,
                                                        invoice_kpi):
    digest = make_digest(acme, recipients=[alice, sam], kpis=["crm.new_leads", invoice_kpi.key])
    client = client_for(alice)
    page = client.get(reverse("digests:preview", args=[digest.pk]), {"user": sam.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert "New leads" in html and "1 hidden" in html
    body = client.get(reverse("digests:preview_body", args=[digest.pk]), {"user": sam.pk})
    assert body.status_code == 200
    assert "default-src 'none'" in body["Content-Security-Policy"]
    assert "New leads" in body.content.decode()
    assert "Invoiced amount" not in body.content.decode()
    mine = client.get(reverse("digests:preview_body", args=[digest.pk]))
    assert "Invoiced amount" in mine.content.decode()


def test_a_user_previews_only_their_own_digest(acme, alice, bob, client_for):
    digest = make_digest(acme, recipients=[alice, bob])
    client = client_for(bob)
    assert client.get(reverse("digests:preview", args=[digest.pk])).status_code == 200
    other = client.get(reverse("digests:preview_body", args=[digest.pk]), {"user": alice.pk})
    assert other.status_code == 403


def test_send_now_to_me_queues_one_mail_and_no_scheduled_send(acme, domain, alice, bob,
                                                              client_for):
    digest = make_digest(acme, recipients=[alice, bob])
    response = client_for(alice).post(reverse("digests:send_now", args=[digest.pk]),
                                      {"to": "me"}, follow=True)
    assert response.status_code == 200
    assert "Sent to you" in response.content.decode()
    mail = OutgoingMail.objects.get()
    assert list(mail.recipients.values_list("address", flat=True)) == ["alice@acme.example"]
    assert not DigestSend.objects.filter(kind=DigestSend.Kind.SCHEDULED).exists()
    assert DigestSend.objects.get().user == alice


def test_send_now_to_all_asks_first_then_says_how_many(acme, domain, alice, bob, client_for):
    digest = make_digest(acme, recipients=[alice, bob])
    client = client_for(alice)
    url = reverse("digests:send_now", args=[digest.pk])
    confirm = client.get(url, {"to": "all"})
    assert confirm.status_code == 200 and "2 recipients" in confirm.content.decode()
    assert OutgoingMail.objects.count() == 0
    done = client.post(url, {"to": "all"}, follow=True)
    assert "Sent to 2 recipients." in done.content.decode()
    assert OutgoingMail.objects.count() == 2


def test_activate_and_deactivate(acme, alice, client_for):
    digest = make_digest(acme)
    client = client_for(alice)
    client.post(reverse("digests:set_active", args=[digest.pk]), {"active": "0"})
    digest.refresh_from_db()
    assert not digest.active and digest.next_run_at is None
    client.post(LIST, {"action": "activate_selected", "_selected_action": [digest.pk]})
    digest.refresh_from_db()
    assert digest.active and digest.next_run_at is not None
    assert AuditLog.objects.filter(action="digest.activate").count() == 1


def test_bob_may_not_change_a_digest(acme, bob, client_for):
    digest = make_digest(acme, recipients=[bob])
    client = client_for(bob)
    page = client.get(change_url(digest)).content.decode()  # read-only, with his own actions
    assert 'id="digest-send-me"' in page and 'id="digest-preview"' in page
    assert 'id="digest-send-all"' not in page and 'id="digest-toggle-active"' not in page
    assert client.post(change_url(digest), form_data(name="Hacked")).status_code == 403
    assert client.get(reverse("digests:send_now", args=[digest.pk]),
                      {"to": "all"}).status_code == 403
    response = client.post(reverse("digests:set_active", args=[digest.pk]), {"active": "0"},
                           follow=True)
    assert "do not allow you to change digests" in response.content.decode()
    digest.refresh_from_db()
    assert digest.name == "Weekly pulse" and digest.active


def test_charlie_of_globex_gets_404_for_acmes_digest(acme, globex, charlie, client_for):
    digest = make_digest(acme)
    client = client_for(charlie)
    assert client.get(change_url(digest)).status_code == 404
    for name in ("preview", "preview_body"):
        assert client.get(reverse(f"digests:{name}", args=[digest.pk])).status_code == 404
    assert client.post(reverse("digests:send_now", args=[digest.pk]),
                       {"to": "me"}).status_code == 404
    assert "Weekly pulse" not in client.get(LIST).content.decode()


def test_a_slowed_down_digest_goes_back_to_the_chosen_periodicity(acme, alice, client_for):
    digest = make_digest(acme, periodicity="daily")
    Digest.objects.filter(pk=digest.pk).update(periodicity="weekly", slowed_from="daily",
                                               slowdown_notice=True)
    client = client_for(alice)
    page = client.get(change_url(digest)).content.decode()
    assert 'id="digest-slowed"' in page and "Back to daily" in page
    client.post(reverse("digests:restore_periodicity", args=[digest.pk]))
    digest.refresh_from_db()
    assert digest.periodicity == "daily" and not digest.slowed_from
    assert AuditLog.objects.filter(action="digest.restore_periodicity", actor=alice).exists()


def test_the_preview_picker_offers_a_user_only_themselves(acme, alice, bob, client_for):
    digest = make_digest(acme, recipients=[alice, bob])
    html = client_for(bob).get(reverse("digests:preview", args=[digest.pk])).content.decode()
    assert f'<option value="{bob.pk}"' in html and f'<option value="{alice.pk}"' not in html


def test_send_now_says_what_could_not_be_queued(acme, domain, alice, tess, client_for):
    digest = make_digest(acme, recipients=[tess])  # a ".test" address the outbox refuses
    response = client_for(alice).post(reverse("digests:send_now", args=[digest.pk]),
                                      {"to": "all"}, follow=True)
    html = response.content.decode()
    # who, and why, in words (the address is refused for good: retrying would not help)
    assert f"Not sent to 1 recipient: Tess &lt;{tess.email}&gt;: " in html
    assert OutgoingMail.objects.count() == 0


def test_the_sidebar_has_a_digests_entry(acme, alice, bob, client_for):
    from mailroom.core import navigation
    from mailroom.digests.views import register_navigation

    register_navigation()
    register_navigation()  # idempotent: ready() may run twice in tests
    entries = [e for e in navigation.ENTRIES if e.url_name == "admin:digests_digest_changelist"]
    assert len(entries) == 1 and entries[0].title == "Digests"
    assert f'href="{LIST}"' in client_for(alice).get(reverse("admin:index")).content.decode()


def test_saving_keeps_the_order_of_the_kpis_already_shown(acme, alice, client_for,
                                                         invoice_kpi):
    digest = make_digest(acme, kpis=[invoice_kpi.key, "crm.new_leads"])
    response = client_for(alice).post(change_url(digest), form_data(
        name="Weekly pulse", periodicity="monthly", kpis=["crm.new_leads", invoice_kpi.key]))
    assert response.status_code == 302
    digest.refresh_from_db()
    assert digest.periodicity == "monthly"
    assert digest.kpis == [invoice_kpi.key, "crm.new_leads"]


def test_deleting_a_digest_goes_through_the_service_and_is_audited(client_for, acme, domain,
                                                                   alice, mia, bob):
    digest = make_digest(acme, recipients=[bob])
    url = reverse("admin:digests_digest_delete", args=[digest.pk])
    for user in (bob, mia):  # deleting is for Administrators, as everywhere in the back office
        assert client_for(user).post(url, {"post": "yes"}).status_code == 403
    assert Digest.objects.filter(pk=digest.pk).exists()
    response = client_for(alice).post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Digest.objects.filter(pk=digest.pk).exists()
    assert not DigestSubscription.objects.filter(digest_id=digest.pk).exists()
    entry = AuditLog.objects.get(action="digest.delete")
    assert entry.actor == alice and entry.before["name"] == digest.name
