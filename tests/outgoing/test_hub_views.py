"""The email hub: list, filters, search, the detail page, actions and who may use them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from mailroom.core.models import AuditLog
from mailroom.outgoing import services
from mailroom.outgoing.models import (
    FailureType,
    MailServer,
    OutgoingMail,
    OutgoingRecipient,
    SendAttempt,
)

HUB = reverse("admin:outgoing_outgoingmail_changelist")


def detail(mail) -> str:
    return reverse("admin:outgoing_outgoingmail_change", args=[mail.pk])


def action(mail, name: str) -> str:
    return reverse("outgoing:mail_action", args=[mail.pk, name])


def make_mail(company, subject="Invoice INV/2026/0001", to="ada@client.example", **kwargs):
    args = dict(company=company, email_from="Acme <billing@acme.example>", to=[to],
                subject=subject, html="<p>Hello <b>Ada</b></p>")
    args.update(kwargs)
    return services.enqueue(**args)


def set_state(mail, state, **fields):
    OutgoingMail.objects.filter(pk=mail.pk).update(state=state, **fields)
    mail.refresh_from_db()
    return mail


@pytest.fixture
def server(acme):
    return MailServer.objects.create(company=acme, name="Relay", host="smtp.acme.example",
                                     password="relay-secret-value")


@pytest.fixture
def failed(acme, lead, server):
    mail = make_mail(acme, subject="Quote for the big deal", to="boss@client.example",
                     record=lead, priority=OutgoingMail.Priority.HIGH)
    set_state(mail, "exception", failure_type=FailureType.REJECTED,
              failure_reason="550 5.1.1 mailbox unavailable", used_server=server)
    mail.recipients.update(status=OutgoingRecipient.Status.FAILED,
                           failure_type=FailureType.REJECTED,
                           failure_reason="mailbox unavailable", smtp_code=550)
    SendAttempt.objects.create(mail=mail, server=server, server_name="Relay",
                               outcome="failed", smtp_code=550,
                               smtp_reply="5.1.1 mailbox unavailable", duration_ms=42)
    return mail


@pytest.fixture
def sent(acme):
    mail = make_mail(acme, subject="Welcome aboard", to="zoe@other.example",
                     priority=OutgoingMail.Priority.LOW)
    return set_state(mail, "sent", sent_at=timezone.now())


@pytest.fixture
def foreign(globex):
    return make_mail(globex, subject="Globex payroll", email_from="hr@globex.example",
                     to="ceo@globex.example")


# ---------------------------------------------------------------- list, filters, search
def test_hub_lists_current_company_mails_with_state_chips(client_for, bob, failed, sent,
                                                          foreign):
    page = client_for(bob).get(HUB)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Quote for the big deal" in html and "Welcome aboard" in html
    assert "Globex payroll" not in html
    assert "bg-red-100" in html and "bg-green-100" in html  # failed red, sent green
    assert 'id="hub-counts"' in html


@pytest.mark.parametrize("query,shown,hidden", [
    ("state__exact=exception", "Quote for the big deal", "Welcome aboard"),
    ("state__exact=sent", "Welcome aboard", "Quote for the big deal"),
    ("failure_type__exact=rejected", "Quote for the big deal", "Welcome aboard"),
    ("priority__exact=3", "Welcome aboard", "Quote for the big deal"),
    ("q=boss@client", "Quote for the big deal", "Welcome aboard"),
    ("q=welcome", "Welcome aboard", "Quote for the big deal"),
])
def test_filters_and_search(client_for, bob, failed, sent, query, shown, hidden):
    html = client_for(bob).get(f"{HUB}?{query}").content.decode()
    assert shown in html
    assert hidden not in html


def test_filter_by_server_record_type_and_date(client_for, bob, failed, sent, server, lead):
    client = client_for(bob)
    html = client.get(f"{HUB}?server={server.pk}").content.decode()
    assert "Quote for the big deal" in html and "Welcome aboard" not in html
    lead_type = ContentType.objects.get_for_model(lead)
    html = client.get(f"{HUB}?record_type={lead_type.pk}").content.decode()
    assert "Quote for the big deal" in html and "Welcome aboard" not in html
    OutgoingMail.objects.filter(pk=sent.pk).update(
        created_at=timezone.now() - timedelta(days=10))
    today = timezone.localdate().isoformat()
    html = client.get(f"{HUB}?created_at_from={today}&created_at_to={today}").content.decode()
    assert "Quote for the big deal" in html and "Welcome aboard" not in html


def test_server_filter_offers_only_own_company_servers(client_for, bob, globex, failed):
    MailServer.objects.create(company=globex, name="Globex relay", host="smtp.globex.example")
    html = client_for(bob).get(HUB).content.decode()
    assert "Relay" in html
    assert "Globex relay" not in html


# ---------------------------------------------------------------- detail page
def test_detail_page_shows_everything_about_the_mail(client_for, bob, failed, lead):
    page = client_for(bob).get(detail(failed))
    assert page.status_code == 200
    html = page.content.decode()
    body_url = reverse("outgoing:mail_body", args=[failed.pk])
    assert f'sandbox="" src="{body_url}"' in html
    assert "Hello <b>Ada</b>" not in html  # the body only ever renders inside the iframe
    assert failed.message_id.replace("<", "&lt;").replace(">", "&gt;") in html
    assert "boss@client.example" in html and "mailbox unavailable" in html
    assert "5.1.1 mailbox unavailable" in html and "42 ms" in html  # the attempt log
    assert reverse("admin:crm_lead_change", args=[lead.pk]) in html  # link to the record
    assert "Rejected by the recipient&#x27;s server" in html


def test_body_is_served_with_a_strict_policy(client_for, bob, acme):
    mail = make_mail(acme, html='<p>Hi</p><script>alert(1)</script><img src="https://t.example/p.gif">')
    response = client_for(bob).get(reverse("outgoing:mail_body", args=[mail.pk]))
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp
    assert "script-src" not in csp and "img-src data: cid:" in csp


def test_text_only_body_is_escaped(client_for, bob, acme):
    mail = make_mail(acme, html="", text="<b>not bold</b>")
    response = client_for(bob).get(reverse("outgoing:mail_body", args=[mail.pk]))
    assert b"&lt;b&gt;not bold" in response.content


def test_uncertain_mail_is_flagged(client_for, bob, sent):
    OutgoingMail.objects.filter(pk=sent.pk).update(was_uncertain=True)
    client = client_for(bob)
    assert "may have been delivered twice" in client.get(detail(sent)).content.decode().lower()
    assert "⚠" in client.get(HUB).content.decode()


# ---------------------------------------------------------------- isolation
def test_other_company_mail_is_404(client_for, bob, foreign):
    client = client_for(bob)
    assert client.get(detail(foreign)).status_code == 404
    assert client.get(reverse("outgoing:mail_body", args=[foreign.pk])).status_code == 404
    assert client.post(action(foreign, "retry")).status_code == 404


def test_manager_of_another_company_cannot_act(client_for, globex, failed):
    from tests.conftest import make_user

    greta = make_user("greta", [globex], "Mail Manager")
    client = client_for(greta)
    assert client.post(action(failed, "retry")).status_code == 404
    failed.refresh_from_db()
    assert failed.state == "exception"


# ---------------------------------------------------------------- actions and permissions
def test_manager_retries_from_the_detail_page(client_for, mia, failed):
    client = client_for(mia)
    html = client.get(detail(failed)).content.decode()
    assert action(failed, "retry") in html and action(failed, "cancel") in html
    response = client.post(action(failed, "retry"))
    assert response.status_code == 302 and response["Location"] == detail(failed)
    failed.refresh_from_db()
    assert failed.state == "outgoing"
    assert AuditLog.objects.filter(action="outgoing.retry", object_id=str(failed.pk),
                                   actor=mia).exists()
    follow = client.get(response["Location"]).content.decode()
    assert "Queued again." in follow


def test_manager_cancels_and_sends_now(client_for, mia, acme):
    mail = make_mail(acme, scheduled_at=timezone.now() + timedelta(hours=3))
    client = client_for(mia)
    client.post(action(mail, "send_now"))
    mail.refresh_from_db()
    assert mail.next_attempt_at <= timezone.now()
    client.post(action(mail, "cancel"))
    mail.refresh_from_db()
    assert mail.state == "cancelled"
    assert set(AuditLog.objects.filter(object_id=str(mail.pk)).values_list(
        "action", flat=True)) == {"outgoing.send_now", "outgoing.cancel"}


def test_action_that_does_not_fit_the_state_says_so(client_for, mia, sent):
    response = client_for(mia).post(action(sent, "cancel"), follow=True)
    assert "Nothing done" in response.content.decode()
    sent.refresh_from_db()
    assert sent.state == "sent"


def test_plain_user_sees_the_hub_read_only(client_for, bob, failed):
    client = client_for(bob)
    html = client.get(detail(failed)).content.decode()
    assert action(failed, "retry") not in html and action(failed, "cancel") not in html
    listing = client.get(HUB).content.decode()
    assert 'name="action"' not in listing and "Retry selected" not in listing
    for name in ("retry", "cancel", "send_now"):
        assert client.post(action(failed, name)).status_code == 403
    response = client.post(HUB, {"action": "retry_selected", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.state == "exception"
    assert not AuditLog.objects.filter(action__startswith="outgoing.").exists()
    assert response.status_code in (200, 302)


def test_actions_are_post_only(client_for, mia, failed):
    assert client_for(mia).get(action(failed, "retry")).status_code == 405


def test_bulk_actions_for_managers(client_for, mia, failed, sent, acme):
    waiting = make_mail(acme, subject="Reminder")
    client = client_for(mia)
    listing = client.get(HUB).content.decode()
    assert "Retry selected" in listing and "Cancel selected" in listing
    response = client.post(HUB, {"action": "cancel_selected", "confirm": "yes",
                                 "_selected_action": [failed.pk, sent.pk, waiting.pk]},
                           follow=True)
    html = response.content.decode()
    assert "Cancelled: 2." in html and "1 skipped" in html
    states = dict(OutgoingMail.objects.values_list("subject", "state"))
    assert states["Quote for the big deal"] == "cancelled"
    assert states["Reminder"] == "cancelled" and states["Welcome aboard"] == "sent"
    client.post(HUB, {"action": "retry_selected", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.state == "outgoing"
    assert AuditLog.objects.filter(action="outgoing.cancel").count() == 2


# ---------------------------------------------------------------- dashboard
def test_dashboard_counts_and_chart(client_for, bob, failed, sent, foreign):
    set_state(foreign, "sent", sent_at=timezone.now())
    response = client_for(bob).get(reverse("outgoing:dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    counts = {row["state"]: row["count"] for row in response.context["counts"]}
    assert counts["sent"] == 1 and counts["exception"] == 1 and counts["outgoing"] == 0
    chart = response.context["chart"]
    assert len(chart["labels"]) == 14
    assert chart["datasets"][0]["data"][-1] == 1 and chart["datasets"][1]["data"][-1] == 1
    assert 'class="chart"' in html and "unfold/js/chart/chart.js" in html
    assert [row["mail"] for row in response.context["attention"]] == [failed]
    assert "Globex payroll" not in html


def test_sidebar_lists_the_email_screens(client_for, mia):
    html = client_for(mia).get(reverse("admin:index")).content.decode()
    for title in ("Email hub", "Email dashboard", "Outgoing mail servers", "DKIM keys"):
        assert title in html


# ---------------------------------------------------------------- the record's chatter
@pytest.fixture
def chatter_mail(acme, lead, bob):
    from mailroom.chatter.models import Message

    message = Message.objects.create(
        company=acme, content_type=ContentType.objects.get_for_model(lead), object_id=lead.pk,
        message_type="email", direction="out", subject="Your quote", body_html="<p>Quote</p>",
        author_user=bob, author_name="Bob")
    mail = make_mail(acme, subject="Your quote", record=lead, chatter_message=message)
    return set_state(mail, "exception", failure_type=FailureType.INVALID_RECIPIENT,
                     failure_reason="ada@client.example does not exist")


def panel_url(lead) -> str:
    return reverse("chatter:panel", args=[ContentType.objects.get_for_model(lead).pk, lead.pk])


def test_chatter_marks_failed_mail_with_resend_for_managers(client_for, mia, lead,
                                                             chatter_mail):
    client = client_for(mia)
    html = client.get(panel_url(lead)).content.decode()
    assert "Failed: Invalid recipient" in html and "does not exist" in html
    assert action(chatter_mail, "retry") in html and action(chatter_mail, "cancel") in html
    response = client.post(action(chatter_mail, "retry"), {"from": "chatter"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode()
    assert f'id="mail-status-{chatter_mail.chatter_message_id}"' in fragment
    assert "Queued" in fragment and "Failed:" not in fragment
    chatter_mail.refresh_from_db()
    assert chatter_mail.state == "outgoing"


def test_chatter_shows_failure_but_no_buttons_to_plain_users(client_for, bob, lead,
                                                             chatter_mail):
    html = client_for(bob).get(panel_url(lead)).content.decode()
    assert "Failed: Invalid recipient" in html
    assert action(chatter_mail, "retry") not in html


def test_chatter_timeline_costs_one_query_for_mail_status(client_for, mia, lead, chatter_mail):
    client = client_for(mia)
    client.get(panel_url(lead))  # warm caches (content types, session)
    from mailroom.chatter.models import Message

    for n in range(5):
        message = Message.objects.create(
            company=chatter_mail.company, content_type=chatter_mail.content_type,
            object_id=lead.pk, message_type="email", direction="out", subject=f"m{n}",
            author_name="Bob")
        make_mail(chatter_mail.company, subject=f"m{n}", chatter_message=message)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(panel_url(lead))
    outbox = [q for q in queries.captured_queries if "outgoing_outgoingmail" in q["sql"]]
    assert len(outbox) == 1
