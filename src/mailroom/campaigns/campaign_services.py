"""Campaign services: the only writers of campaigns (the engine, run by the worker, writes
their recipients and progress).

One transaction each, an explicit `actor` (Mail Managers), an audit row per change of
configuration or state. A campaign is edited while it is a draft or scheduled; sending it
hands it to the worker (state "preparing"), which resolves the audience, renders and queues
in batches (engine/). Pause holds what is not queued yet and what the outbox has not sent
(send_checks.py defers those mails); cancel stops both for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailroom.campaigns.campaign_models import (
    Campaign,
    CampaignRecipient,
    CampaignTranslation,
    Segment,
)
from mailroom.campaigns.models import MailingList
from mailroom.core.access import require
from mailroom.core.services import audit, snapshot
from mailroom.lib.addresses import InvalidAddress, domain_of, sendable_email
from mailroom.lib.formatting import normalize_locale
from mailroom.lib.sandbox import TemplateError, compile_template
from mailroom.outgoing import checks
from mailroom.outgoing import services as outbox
from mailroom.outgoing.models import DkimKey, MailServer, OutgoingMail, Purpose
from mailroom.routing.models import AliasDomain

State = Campaign.State
FIELDS = ["name", "subject", "preview_text", "email_from", "reply_to", "layout", "lang",
          "server", "track_opens", "track_clicks", "state", "scheduled_at",
          "deliverability_override", "bounce_limit", "complaint_limit", "guard_after",
          "ab_test", "subject_b", "ab_sample", "ab_metric", "ab_hours"]
RUNNING = (State.PREPARING, State.SENDING)
MAX_TEST_ADDRESSES = 10


def _require(actor, campaign: Campaign, action: str = "change") -> None:
    require(actor, f"campaigns.{action}_campaign", campaign if campaign.pk else None,
            denied="Only Mail Managers can prepare and send campaigns.")
    if actor is not None and not actor.is_superuser and campaign.company_id not in \
            actor.company_ids():
        raise PermissionDenied("This campaign belongs to another company.")


def sending_domains(company) -> set[str]:
    """The domains the company may send bulk mail from: its alias domains, its DKIM keys'
    domains and the domains its bulk servers are limited to."""
    domains = set(AliasDomain.objects.filter(company=company).values_list("name", flat=True))
    domains |= set(DkimKey.objects.filter(company=company).values_list("domain", flat=True))
    for server in MailServer.objects.filter(company=company,
                                            purpose__in=[Purpose.BULK, Purpose.BOTH]):
        domains |= {entry.rsplit("@", 1)[-1] for entry in server.filter_entries()}
    return {d.lower() for d in domains if d}


def _template_errors(field: str, source: str, *, html: bool) -> list[str]:
    try:
        compile_template(source, name="campaign", field=field, html=html)
    except TemplateError as exc:
        return [str(exc)]
    return []


def _validate(campaign: Campaign) -> None:
    errors: dict[str, list[str]] = {}

    def check(field: str, func, *args) -> None:
        try:
            func(*args)
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.messages)

    campaign.name = (campaign.name or "").strip()
    if not campaign.name:
        errors["name"] = ["Give the campaign a name."]
    if not (campaign.subject or "").strip():
        errors["subject"] = ["A subject is required."]
    check("subject", checks.one_line, "subject", campaign.subject)
    check("preview_text", checks.one_line, "preview text", campaign.preview_text)
    check("email_from", checks.mailbox, "email_from", campaign.email_from)
    check("reply_to", checks.mailboxes, "reply_to", campaign.reply_to)
    if campaign.email_from and "email_from" not in errors:
        address = campaign.email_from.rsplit("<", 1)[-1].rstrip(">").strip()
        domain = domain_of(address).lower()
        allowed = sending_domains(campaign.company)
        if domain not in allowed:
            known = ", ".join(sorted(allowed)) or "none yet"
            errors["email_from"] = [
                f"{domain} is not one of this company's sending domains ({known}). Add it "
                "under Email › Alias domains or as a DKIM key first, so receivers can trust "
                "the campaign."]
    if campaign.lang:
        campaign.lang = normalize_locale(campaign.lang, fallback="")
        if not campaign.lang:
            errors["lang"] = ["Unknown language."]
    if campaign.server_id and (campaign.server.company_id != campaign.company_id
                               or campaign.server.purpose == Purpose.TRANSACTIONAL):
        errors["server"] = ["Choose one of this company's servers set for bulk mail."]
    for field, source, html in (("subject", campaign.subject, False),
                                ("body_html", campaign.body_html, True),
                                ("subject_b", campaign.subject_b, False),
                                ("body_html_b", campaign.body_html_b, True)):
        found = _template_errors(field, source or "", html=html)
        if found:
            errors.setdefault(field, []).extend(found)
    check("subject_b", checks.one_line, "subject B", campaign.subject_b)
    if campaign.ab_test:
        if not (campaign.subject_b or "").strip() and not (campaign.body_html_b or "").strip():
            errors.setdefault("subject_b", []).append(
                "Write the subject or the body of variant B: as it is, B is the same as A.")
        if not 2 <= (campaign.ab_sample or 0) <= 90:
            errors["ab_sample"] = ["Test on 2% to 90% of the audience."]
        if not 1 <= (campaign.ab_hours or 0) <= 168:
            errors["ab_hours"] = ["Wait between 1 and 168 hours (a week)."]
        if campaign.ab_metric not in ("opened", "clicked"):
            errors["ab_metric"] = ["Choose the open rate or the click rate."]
        elif campaign.ab_metric == "opened" and not campaign.track_opens:
            errors["ab_metric"] = ["Opens are not tracked for this campaign: choose the "
                                   "click rate, or track opens."]
        elif campaign.ab_metric == "clicked" and not campaign.track_clicks:
            errors["ab_metric"] = ["Clicks are not tracked for this campaign: choose the "
                                   "open rate, or track clicks."]
    if errors:
        raise ValidationError(errors)


def _own_lists(campaign: Campaign, lists: Iterable | None, field: str) -> list | None:
    if lists is None:
        return None
    lists = list(lists)
    if any(item.company_id != campaign.company_id for item in lists):
        what = "segment" if field == "segments" else "list"
        raise ValidationError({field: f"A {what} belongs to another company."})
    return lists


def save_campaign(campaign: Campaign, *, actor, lists: Iterable[MailingList] | None = None,
                  exclude_lists: Iterable[MailingList] | None = None,
                  segments: Iterable[Segment] | None = None) -> Campaign:
    """Create or change a draft or scheduled campaign (None: leave that audience part)."""
    creating = campaign.pk is None
    _require(actor, campaign, "add" if creating else "change")
    lists = _own_lists(campaign, lists, "lists")
    exclude_lists = _own_lists(campaign, exclude_lists, "exclude_lists")
    segments = _own_lists(campaign, segments, "segments")
    _validate(campaign)
    with transaction.atomic():
        before = {}
        if not creating:
            previous = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if not previous.editable:
                raise ValidationError(f"The campaign is {previous.get_state_display().lower()}"
                                      ": it can no longer be changed. Duplicate it instead.")
            before = snapshot(previous, FIELDS)
            campaign.state = previous.state
        elif actor is not None and actor.pk:
            campaign.created_by = actor
        campaign.updated_at = timezone.now()
        campaign.save()
        if lists is not None:
            campaign.lists.set(lists)
        if exclude_lists is not None:
            campaign.exclude_lists.set(exclude_lists)
        if segments is not None:
            campaign.segments.set(segments)
        audit("campaigns.campaign.create" if creating else "campaigns.campaign.change",
              actor=actor, obj=campaign, before=before, after=snapshot(campaign, FIELDS))
    return campaign


def save_translation(campaign: Campaign, lang: str, *, subject: str, preview_text: str = "",
                     body_html: str = "", actor) -> CampaignTranslation:
    """Add or change the texts of one language (blank subject and body: remove it)."""
    _require(actor, campaign)
    lang = normalize_locale(lang or "", fallback="")
    if not lang:
        raise ValidationError({"lang": "Unknown language."})
    errors: dict[str, list[str]] = {}
    for field, value in (("subject", subject), ("preview_text", preview_text)):
        try:
            checks.one_line(field, value)
        except ValidationError as exc:
            errors[field] = exc.messages
    for field, source, html in (("subject", subject, False), ("body_html", body_html, True)):
        found = _template_errors(field, source, html=html)
        if found:
            errors.setdefault(field, []).extend(found)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not locked.editable:
            raise ValidationError("The campaign can no longer be changed.")
        if not subject.strip() and not body_html.strip():
            deleted, _ = CampaignTranslation.objects.filter(campaign=campaign,
                                                            lang=lang).delete()
            if deleted:
                audit("campaigns.campaign.translation.delete", actor=actor, obj=campaign,
                      before={"lang": lang})
            return CampaignTranslation(campaign=campaign, lang=lang)
        translation, created = CampaignTranslation.objects.update_or_create(
            campaign=campaign, lang=lang,
            defaults={"subject": subject.strip(), "preview_text": preview_text.strip(),
                      "body_html": body_html})
        audit("campaigns.campaign.translation", actor=actor, obj=campaign,
              after={"lang": lang, "created": created})
    return translation


def audience_preview(campaign: Campaign) -> dict:
    """{"total": n, "exclusions": {reason: n}} for the campaign's lists as they are now,
    without writing anything (the live count of the editor)."""
    from mailroom.campaigns.engine import audience  # noqa: PLC0415 - same app, built beside

    return audience.preview(campaign)


def _ready_to_send(campaign: Campaign, *, actor) -> None:
    _validate(campaign)
    if not (campaign.body_html or "").strip():
        raise ValidationError({"body_html": "Write the body first."})
    if not campaign.lists.exists() and not campaign.segments.exists():
        raise ValidationError({"lists": "Choose at least one list or segment to send to."})
    if not settings.MAILROOM_CAMPAIGN_DNS_CHECK:
        return
    # DNS, SPF and DKIM libraries load on first use, not at every process start
    from mailroom.campaigns.deliverability import require_sendable  # noqa: PLC0415

    report = require_sendable(campaign)
    if report.failing:  # sent anyway: the reason is on the campaign, and in the audit log
        audit("campaigns.campaign.deliverability_override", actor=actor, obj=campaign,
              after={"failing": [c.name for c in report.failing],
                     "reason": campaign.deliverability_override})


def _move(campaign: Campaign, *, actor, allowed: tuple, to: str, action: str,
          changes: dict | None = None, reason: str = "") -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state not in allowed:
            raise ValidationError(f"The campaign is {locked.get_state_display().lower()}: it "
                                  f"cannot be {action}.")
        before = {"state": locked.state}
        locked.state = to
        locked.state_reason = reason
        locked.updated_at = timezone.now()
        for name, value in (changes or {}).items():
            setattr(locked, name, value)
        locked.save()
        audit(f"campaigns.campaign.{action.replace(' ', '_')}", actor=actor, obj=locked,
              before=before, after={"state": to, **{k: str(v) for k, v in
                                                    (changes or {}).items()}})
    return locked


def send_now(campaign: Campaign, *, actor) -> Campaign:
    """Hand the campaign to the worker now."""
    _require(actor, campaign)
    _ready_to_send(campaign, actor=actor)
    return _move(campaign, actor=actor, allowed=(State.DRAFT, State.SCHEDULED),
                 to=State.PREPARING, action="sent",
                 changes={"scheduled_at": None, "started_at": timezone.now()})


def schedule(campaign: Campaign, at: datetime, *, actor) -> Campaign:
    """Send at `at` (a time in the future)."""
    _require(actor, campaign)
    if at is None or at <= timezone.now():
        raise ValidationError({"scheduled_at": "Choose a time in the future."})
    _ready_to_send(campaign, actor=actor)
    return _move(campaign, actor=actor, allowed=(State.DRAFT, State.SCHEDULED),
                 to=State.SCHEDULED, action="scheduled", changes={"scheduled_at": at})


def unschedule(campaign: Campaign, *, actor) -> Campaign:
    _require(actor, campaign)
    return _move(campaign, actor=actor, allowed=(State.SCHEDULED,), to=State.DRAFT,
                 action="unscheduled", changes={"scheduled_at": None})


def pause(campaign: Campaign, *, actor) -> Campaign:
    """Stop queueing and hold what the outbox has not sent yet (until resumed)."""
    _require(actor, campaign)
    name = getattr(actor, "get_full_name", lambda: "")() or getattr(actor, "username", "")
    return _move(campaign, actor=actor, allowed=RUNNING, to=State.PAUSED, action="paused",
                 reason=f"Paused by {name}." if name else "Paused.")


def resume(campaign: Campaign, *, actor) -> Campaign:
    _require(actor, campaign)
    all_queued = campaign.audience_done and campaign.queued >= campaign.total
    campaign = _move(campaign, actor=actor, allowed=(State.PAUSED,),
                     to=State.SENDING if all_queued else State.PREPARING, action="resumed")
    mail_ids = list(CampaignRecipient.objects.filter(
        campaign=campaign, status=CampaignRecipient.Status.QUEUED,
        mail__isnull=False).values_list("mail_id", flat=True))
    transaction.on_commit(lambda: outbox.wake(mail_ids))
    return campaign


def cancel(campaign: Campaign, *, actor) -> Campaign:
    """Stop for good: nothing more is queued, the outbox drops what it has not sent."""
    _require(actor, campaign)
    reason = "The campaign was cancelled before this mail was sent."
    with transaction.atomic():
        campaign = _move(campaign, actor=actor,
                         allowed=(State.SCHEDULED, *RUNNING, State.PAUSED),
                         to=State.CANCELLED, action="cancelled",
                         changes={"finished_at": timezone.now()})
        traces = CampaignRecipient.objects.filter(campaign=campaign)
        mail_ids = list(traces.filter(status=CampaignRecipient.Status.QUEUED,
                                      mail__isnull=False).values_list("mail_id", flat=True))
        outbox.cancel_unsent(mail_ids, reason=reason)
        cancelled = OutgoingMail.objects.filter(pk__in=mail_ids,
                                                state=OutgoingMail.State.CANCELLED)
        traces.filter(Q(status=CampaignRecipient.Status.PENDING)
                      | Q(status=CampaignRecipient.Status.QUEUED, mail__in=cancelled)).update(
            status=CampaignRecipient.Status.CANCELLED, reason=reason)
    return campaign


def duplicate(campaign: Campaign, *, actor) -> Campaign:
    """A new draft with the same texts, lists and settings."""
    _require(actor, campaign, "add")
    copy = Campaign(company=campaign.company, **{
        field: getattr(campaign, field) for field in
        ("subject", "preview_text", "email_from", "reply_to", "body_html", "layout", "lang",
         "server", "track_opens", "track_clicks", "ab_test", "subject_b", "body_html_b",
         "ab_sample", "ab_metric", "ab_hours", "bounce_limit", "complaint_limit",
         "guard_after")})
    copy.name = f"{campaign.name} (copy)"[:200]
    with transaction.atomic():
        save_campaign(copy, actor=actor, lists=campaign.lists.all(),
                      exclude_lists=campaign.exclude_lists.all(),
                      segments=campaign.segments.all())
        CampaignTranslation.objects.bulk_create([
            CampaignTranslation(campaign=copy, lang=t.lang, subject=t.subject,
                                preview_text=t.preview_text, body_html=t.body_html)
            for t in campaign.translations.all()])
    return copy


def test_send(campaign: Campaign, addresses: Iterable[str], *, actor) -> int:
    """Queue the campaign to a few addresses, "[Test]" in the subject, on the transactional
    lane (it should arrive now). The links point nowhere real: no recipient exists."""
    from mailroom.campaigns.engine.render import CampaignRenderer  # noqa: PLC0415 - same app

    _require(actor, campaign)
    wanted = [a.strip() for a in addresses if a and a.strip()]
    if not wanted:
        raise ValidationError({"addresses": "Enter at least one address."})
    if len(wanted) > MAX_TEST_ADDRESSES:
        raise ValidationError({"addresses": f"Test with at most {MAX_TEST_ADDRESSES} "
                                            "addresses."})
    clean = []
    for address in wanted:
        try:
            clean.append(sendable_email(address))
        except InvalidAddress as exc:
            raise ValidationError({"addresses": f"{address}: {exc}"}) from None
    _validate(campaign)
    renderer = CampaignRenderer(campaign)
    mails = []
    for address in clean:
        sample = CampaignRecipient(campaign=campaign, email=address, name=address.split("@")[0],
                                   lang=campaign.lang, id=0)
        try:
            rendered = renderer.render(sample)
        except TemplateError as exc:
            raise ValidationError({"body_html": str(exc)}) from None
        mails.append({"email_from": campaign.email_from, "to": [address],
                      "subject": f"[Test] {rendered.subject}", "html": rendered.html,
                      "text": rendered.text, "reply_to": campaign.reply_to,
                      "headers": rendered.headers, "purpose": Purpose.TRANSACTIONAL,
                      "priority": OutgoingMail.Priority.HIGH, "server": campaign.server})
    with transaction.atomic():
        outbox.enqueue_many(company=campaign.company, mails=mails, actor=actor)
        audit("campaigns.campaign.test_send", actor=actor, obj=campaign,
              after={"to": clean})
    return len(mails)
