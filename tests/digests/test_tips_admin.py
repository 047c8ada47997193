"""The tips screens: the list with its numbers, the form (checkboxes, red lines, company) and
"Send as notification now" (one mail per target user, none for inbox-only users)."""

from __future__ import annotations

import pytest

from mailroom.core.models import AuditLog, NotifyBy
from mailroom.digests.models import Tip, TipTranslation, TipView
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient

LIST = "/digests/tip/"


@pytest.fixture
def tip(db, acme):
    return Tip.objects.create(company=acme, title="Follow your leads", sequence=5,
                              roles=["User"], body="<p>Hello {{ user.first_name }}</p>")


def test_list_shows_the_numbers(client_for, mia, tip):
    Tip.objects.filter(pk=tip.pk).update(shown_count=40, click_count=7, useful_yes=3,
                                         useful_no=1)
    page = client_for(mia).get(LIST).content.decode()
    assert "Follow your leads" in page
    assert "75 %" in page  # 3 of 4 found it useful
    assert "Useful %" in page
    assert "Sign your mail with DKIM" in page  # Mailroom's own tips are listed too


def test_list_hides_other_companies_tips(client_for, mia, globex):
    Tip.objects.create(company=globex, title="Globex secret", body="<p>x</p>")
    assert "Globex secret" not in client_for(mia).get(LIST).content.decode()


def _form(**fields):
    data = {"title": "Check your templates", "body": "<p>Hi {{ user.name }}</p>",
            "sequence": "15", "active": "on", "roles": ["Template Editor", "User"],
            "record_types": ["crm.lead"],
            "translations-TOTAL_FORMS": "1", "translations-INITIAL_FORMS": "0",
            "translations-MIN_NUM_FORMS": "0", "translations-MAX_NUM_FORMS": "1000",
            "translations-0-language": "fr_FR", "translations-0-title": "Vos modèles",
            "translations-0-body": "<p>Bonjour {{ user.first_name }}</p>"}
    data.update(fields)
    return data


def test_add_saves_checkboxes_translations_and_company(client_for, mia, acme):
    response = client_for(mia).post(f"{LIST}add/", _form())
    assert response.status_code == 302, response.content.decode()[:2000]
    tip = Tip.objects.get(title="Check your templates")
    assert tip.company == acme
    assert tip.roles == ["Template Editor", "User"]
    assert tip.record_types == ["crm.lead"]
    assert TipTranslation.objects.get(tip=tip).title == "Vos modèles"
    assert AuditLog.objects.filter(action="digests.tip.create", object_id=str(tip.pk)).exists()


def test_forbidden_placeholder_is_a_red_line(client_for, mia):
    response = client_for(mia).post(f"{LIST}add/", _form(body="<p>{{ user.password }}</p>"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "&#x27;user.password&#x27; is not available in tips" in page
    assert not Tip.objects.filter(title="Check your templates").exists()


def test_forbidden_translation_is_a_red_line(client_for, mia):
    response = client_for(mia).post(
        f"{LIST}add/", _form(**{"translations-0-body": "{{ user.__class__ }}"}))
    assert response.status_code == 200
    assert "user.__class__" in response.content.decode()
    assert not Tip.objects.filter(title="Check your templates").exists()


def test_shipped_tips_are_read_only_for_mail_managers(client_for, mia, alice):
    shipped = Tip.objects.get(key="mailroom-dkim")
    url = f"{LIST}{shipped.pk}/change/"
    data = _form(title="Hacked", **{"translations-TOTAL_FORMS": "0"})
    assert client_for(mia).post(url, data).status_code == 403
    shipped.refresh_from_db()
    assert shipped.title == "Sign your mail with DKIM"


# --- send as notification ----------------------------------------------------------------------

def test_send_as_notification_asks_first(client_for, mia, tip, domain, alice, bob, dana):
    response = client_for(mia).post(LIST, {"action": "send_as_notification",
                                           "_selected_action": [tip.pk]})
    assert response.status_code == 200
    assert "Send as notification now?" in response.content.decode()
    assert not OutgoingMail.objects.exists()


def test_send_as_notification_mails_each_target_once(client_for, mia, tip, domain, alice, bob,
                                                     dana, tess):
    bob.notify_by = NotifyBy.INBOX  # reads notifications in Mailroom only
    bob.save(update_fields=["notify_by"])
    response = client_for(mia).post(LIST, {"action": "send_as_notification",
                                           "_selected_action": [tip.pk], "confirm": "yes"})
    assert response.status_code == 302
    # roles ["User"]: alice (Administrators hold every role) and dana; bob reads in Mailroom;
    # tess and mia (no User role) are not targeted
    to = sorted(OutgoingRecipient.objects.values_list("address", flat=True))
    assert to == ["alice@acme.example", "dana@acme.example"]
    mail = OutgoingMail.objects.get(recipients__address="dana@acme.example")
    assert mail.subject == "Follow your leads"
    assert "Hello Dana" in mail.body_html
    assert "/digests/tips/useful/" in mail.body_html
    tip.refresh_from_db()
    assert tip.shown_count == 2
    # every target finds it in their inbox, the inbox-only reader too
    assert set(TipView.objects.filter(notified_at__isnull=False).values_list(
        "user__username", flat=True)) == {"alice", "bob", "dana"}
    assert AuditLog.objects.filter(action="digests.tip.send").exists()


def test_a_tip_sent_as_notification_waits_in_the_inbox_until_read(client_for, mia, tip,
                                                                 domain, bob):
    from mailroom.chatter.inbox import inbox_count
    from mailroom.digests import tip_inbox

    bob.notify_by = NotifyBy.INBOX
    bob.save(update_fields=["notify_by"])
    client_for(mia).post(LIST, {"action": "send_as_notification",
                                "_selected_action": [tip.pk], "confirm": "yes"})
    assert not OutgoingRecipient.objects.filter(address=bob.email).exists()
    assert tip_inbox.count_for_user(bob) == 1 and inbox_count(bob) >= 1
    [item] = tip_inbox.items_for_user(bob)
    assert (item.title, item.summary, item.unread) == ("Follow your leads", "Hello Bob", True)
    page = client_for(bob).get(item.url)  # the tip's own page: its text and the vote
    assert "Hello Bob" in page.content.decode() and "tip-yes" in page.content.decode()
    inbox = client_for(bob).get("/chatter/inbox/")
    assert "Follow your leads" in inbox.content.decode()
    tip_inbox.mark(bob, item.key, True)
    assert tip_inbox.count_for_user(bob) == 0
    tip_inbox.mark(bob, "tip-x²", False)  # not an id: nothing happens
    assert tip_inbox.count_for_user(bob) == 0


def test_users_cannot_send(client_for, bob, tip, domain):
    client_for(bob).post(LIST, {"action": "send_as_notification",
                                "_selected_action": [tip.pk], "confirm": "yes"})
    assert not OutgoingMail.objects.exists()


def test_forms_render(client_for, mia, alice, tip):
    page = client_for(mia).get(f"{LIST}add/").content.decode()
    assert 'type="checkbox" name="roles" value="Mail Manager"' in page
    assert 'name="record_types" value="invoicing.invoice"' in page
    shipped = Tip.objects.get(key="mailroom-dkim")
    page = client_for(alice).get(f"{LIST}{shipped.pk}/change/").content.decode()
    assert "Mailroom (every company)" in page
    assert "Signez vos e-mails avec DKIM" in page  # its French translation, in the inline
