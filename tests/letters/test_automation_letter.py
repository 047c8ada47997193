"""The "Send a letter" automation action: "invoice 30 days overdue, not paid → post it with a
reminder" makes exactly one queued letter per event (the reminder printed under the address
on the first page, the invoice after it); a missing postcode is the run's error and a note,
never a crash; the rule is refused for records that cannot go by post."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from pypdf import PdfReader

from mailroom.automation import services as automation
from mailroom.automation.models import AutomationRule, AutomationRun
from mailroom.automation.tasks import run_date_rules
from mailroom.automation.triggers import company_today
from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from mailroom.core.blobs import attachment_path
from mailroom.letters.layout.generator import LetterSpec, build, message_html
from mailroom.letters.layout.inspect import runs_in, text_runs
from mailroom.letters.layout.windows import STANDARDS, standard
from mailroom.letters.models import Letter
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating.models import EmailTemplate

pytestmark = pytest.mark.django_db
Trigger = AutomationRule.Trigger
OVERDUE = {"state": ["posted"], "payment_state": ["not_paid", "partial"]}


def overdue_invoice(acme, bob, customer, days: int = 30) -> Invoice:
    due = company_today(acme) - datetime.timedelta(days=days)
    draft = invoicing.save_invoice(Invoice(company=acme, partner=customer, user=bob,
                                           invoice_date=due - datetime.timedelta(days=30),
                                           due_date=due), actor=bob)
    draft = invoicing.set_lines(draft, [{"description": "Support", "quantity": 1,
                                         "price_unit": Decimal("80")}], actor=bob)
    return invoicing.post_invoice(draft, actor=bob)


def reminder_template(acme) -> EmailTemplate:
    return EmailTemplate.objects.create(
        company=acme, name="Overdue reminder", record_type="invoicing.invoice", layout="plain",
        subject="Reminder: {{ object.display_name }} is overdue",
        body_html="<p>Dear {{ object.partner.name }},</p><p>our invoice is 30 days overdue. "
                  "Please pay it this week.</p>",
        partner_to="{{ object.partner.id }}")


def letter_rule(acme, template=None, **fields) -> AutomationRule:
    return automation.save_rule(AutomationRule(
        company=acme, name="Invoice 30 days overdue: letter with the reminder",
        record_type="invoicing.invoice", action="letter", template=template,
        trigger=Trigger.DATE, date_field="due_date", days=30, when="after",
        conditions=OVERDUE, **fields), actor=None)


def letters_for(record) -> list[Letter]:
    return list(Letter.objects.filter(object_id=record.pk,
                                      content_type__model=record._meta.model_name))


def notes(record) -> list[str]:
    return [m.body_html for m in thread_queryset(Message, record)
            if m.message_type == Message.Type.NOTE]


def pdf_pages(letter: Letter) -> list[str]:
    reader = PdfReader(io.BytesIO(attachment_path(letter.pdf_sha256).read_bytes()))
    return [page.extract_text() for page in reader.pages]


def test_overdue_invoice_gets_one_letter_with_the_reminder_first(acme, bob, customer):
    rule = letter_rule(acme, reminder_template(acme))
    invoice = overdue_invoice(acme, bob, customer)
    recent = overdue_invoice(acme, bob, customer, days=29)
    paid = overdue_invoice(acme, bob, customer)
    invoicing.register_payment(paid, paid.amount_total, actor=bob)

    assert run_date_rules().startswith("1 automated actions done")
    [letter] = letters_for(invoice)
    assert letter.state == Letter.State.QUEUED and letter.created_by is None
    assert letter.cover_page and letter.address_name == customer.name
    assert letter.provider.company == acme
    assert letters_for(recent) == letters_for(paid) == []
    assert not OutgoingMail.objects.exists()  # a letter, not an email

    pages = pdf_pages(letter)
    first = " ".join(pages[0].split())
    assert f"Reminder: {invoice.ref} is overdue" in first
    assert "our invoice is 30 days overdue" in first and "Dear Ada Lovelace" in first
    assert "12 Rue de la Paix" in first and "75002 Paris" in first
    rest = " ".join(" ".join(pages[1:]).split())
    assert invoice.ref in rest and "Support" in rest  # the invoice follows
    assert "30 days overdue" not in rest
    # in the window: the address, and only the address (and the return line)
    std = standard(letter.provider.window_standard)
    pdf = attachment_path(letter.pdf_sha256).read_bytes()
    in_window = [run.text for run in runs_in(text_runs(pdf, 1), std.window)]
    assert customer.name in in_window and "75002 Paris" in in_window
    assert not any("overdue" in text for text in in_window)

    run = AutomationRun.objects.get(rule=rule)
    assert run.ok and run.outcome == letter and run.mail is None
    assert any("Letter queued for posting" in note for note in notes(invoice))

    assert run_date_rules().startswith("0 automated actions done")  # the next hour
    assert len(letters_for(invoice)) == 1


def test_the_run_list_links_to_the_letter(acme, bob, customer, client, alice):
    letter_rule(acme)
    invoice = overdue_invoice(acme, bob, customer)
    run_date_rules()
    [letter] = letters_for(invoice)
    client.force_login(alice)
    page = client.get("/automation/automationrun/").content.decode()
    assert f'href="/letters/letter/{letter.pk}/change/"' in page
    assert f"letter #{letter.pk}" in page
    assert "Send a letter (by post)" in client.get("/automation/automationrule/").content.decode()


def test_a_second_firing_for_the_same_event_posts_no_second_letter(acme, bob, customer):
    from mailroom.automation.triggers import fire

    rule = letter_rule(acme)
    invoice = overdue_invoice(acme, bob, customer)
    event = f"date:due_date={invoice.due_date.isoformat()}"
    first = fire(rule, invoice, event)
    assert fire(rule, invoice, event) is None  # the run row says: done
    AutomationRun.objects.filter(pk=first.pk).delete()  # even without it:
    again = fire(rule, invoice, event)
    assert again.outcome == first.outcome  # the letter's idempotency key finds the letter
    assert len(letters_for(invoice)) == 1


def test_without_a_template_the_invoice_goes_alone(acme, bob, customer):
    letter_rule(acme)
    invoice = overdue_invoice(acme, bob, customer)
    run_date_rules()
    [letter] = letters_for(invoice)
    text = " ".join(" ".join(pdf_pages(letter)).split())
    assert invoice.ref in text and "overdue" not in text


def test_a_missing_postcode_is_the_runs_error_and_a_note(acme, bob, customer):
    rule = letter_rule(acme, reminder_template(acme))
    customer.zip = ""
    customer.save()
    invoice = overdue_invoice(acme, bob, customer)
    assert "1 failed" in run_date_rules()
    assert letters_for(invoice) == []
    run = AutomationRun.objects.get(rule=rule)
    assert run.error == "The address of Ada Lovelace has no postcode (ZIP)."
    assert run.outcome is None
    assert any("Automated letter “Invoice 30 days overdue: letter with the reminder” could "
               "not be sent: The address of Ada Lovelace has no postcode (ZIP)." in note
               for note in notes(invoice))
    rule.refresh_from_db()
    assert "postcode (ZIP)" in rule.last_error


def test_records_without_a_document_cannot_go_by_post(acme):
    rule = AutomationRule(company=acme, name="Ticket letter", record_type="helpdesk.ticket",
                          action="letter", trigger=Trigger.CREATED)
    with pytest.raises(ValidationError) as info:
        automation.save_rule(rule, actor=None)
    assert info.value.message_dict == {
        "action": ["Tickets have no document to post; choose “Send an email”."]}


def test_an_email_rule_without_template_is_refused_but_a_letter_rule_is_not(acme):
    email = AutomationRule(company=acme, name="Email", record_type="invoicing.invoice",
                           trigger=Trigger.CREATED)
    with pytest.raises(ValidationError) as info:
        automation.save_rule(email, actor=None)
    assert info.value.message_dict == {
        "template": ["Choose the template to send: “Send an email” needs one."]}
    letter = automation.save_rule(AutomationRule(
        company=acme, name="Letter", record_type="invoicing.invoice", action="letter",
        trigger=Trigger.CREATED), actor=None)
    assert letter.pk and letter.template is None


def test_the_admin_offers_the_letter_action_and_says_what_the_template_does(client, alice):
    client.force_login(alice)
    page = client.get("/automation/automationrule/add/").content.decode()
    assert 'value="letter"' in page and "Send a letter (by post)" in page
    assert "printed as a reminder on the cover page" in page


# --- the cover's message ------------------------------------------------------------------

def test_the_message_keeps_its_text_and_loses_what_could_move_or_fetch():
    html = message_html('<p style="margin-top:-150mm" onclick="x()">Pay</p>'
                        '<img src="http://example.com/t.png"><script>alert(1)</script>')
    assert html == "<p>Pay</p>"
    assert message_html("Line one\n\n2 < 3 & more") == "<p>Line one</p><p>2 &lt; 3 &amp; more</p>"


def test_a_long_message_flows_on_and_the_document_starts_on_a_fresh_sheet():
    spec = LetterSpec(sender_name="Acme", sender_lines=["Lyon", "France"],
                      recipient_lines=["Ada Lovelace", "12 Rue de la Paix", "75002 Paris",
                                       "France"],
                      documents=[build(LetterSpec(
                          sender_name="Acme", sender_lines=[], recipient_lines=["Ada"],
                          message="Invoice body")).pdf],
                      message="\n\n".join(f"Paragraph {n}" for n in range(120)), duplex=True)
    built = build(spec)
    reader = PdfReader(io.BytesIO(built.pdf))
    cover = [i for i, page in enumerate(reader.pages) if "Paragraph" in page.extract_text()]
    assert len(cover) > 1 and cover == list(range(len(cover)))  # the message flows on
    first_after = len(cover) + (len(cover) % 2)  # a blank back after an odd cover
    assert "Invoice body" in reader.pages[first_after].extract_text()
    assert first_after % 2 == 0  # a recto


@pytest.mark.parametrize("key", sorted(STANDARDS))
def test_the_message_stays_out_of_the_window_and_the_protected_zones(key):
    std = standard(key)
    address = ["Ada Lovelace", "12 Rue de la Paix", "75002 Paris", "France"]
    spec = LetterSpec(sender_name="Acme", sender_lines=["Lyon", "France"],
                      recipient_lines=address, standard=key,
                      message="<h3>Reminder: INV/2026/0001</h3>" + "<p>Please pay.</p>" * 30)
    runs = text_runs(build(spec).pdf, 1)
    assert any(run.text == "Reminder: INV/2026/0001" for run in runs)
    in_window = {run.text for run in runs_in(runs, std.window)}
    assert set(address) <= in_window
    assert not {text for text in in_window if "Reminder" in text or "pay" in text}
    for zone in std.protected_zones():
        assert runs_in(runs, zone.box) == [], (zone.name, runs_in(runs, zone.box))
