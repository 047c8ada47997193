"""Tip services: the only writers of tips, their translations and their numbers.

- `save_tip` checks every description (the sandbox compiles it, every placeholder is checked
  against what a tip may read, and a trial render runs) and writes an audit row.
  Who may change what: a company's own tips, users with the tip permissions of that company
  (Mail Managers, Administrators); the tips Mailroom ships (no company, shown in every
  company), only Administrators and superusers — switching one off switches it off for
  every company on this installation.
- `record_click` and `record_vote` are what the signed links of an email do (tip_views).
- `send_as_notification` emails a tip now to the users of a company it targets.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from mailroom.activities import mail as house_mail
from mailroom.core import record_types
from mailroom.core.access import perm, require
from mailroom.core.models import User
from mailroom.core.roles import Role
from mailroom.core.services import audit, snapshot
from mailroom.digests import tips as selection
from mailroom.digests.models import Tip, TipTranslation, TipView
from mailroom.digests.tip_links import links
from mailroom.lib.sandbox import TemplateError, compile_template, render_string, unknown_paths

AUDITED = ["title", "body", "sequence", "roles", "record_types", "active", "company", "key"]
_SAMPLE = {"user": {"name": "Ada Lovelace", "first_name": "Ada"},
           "company": {"name": "Example Ltd"}}


def can_change(actor, tip: Tip) -> bool:
    try:
        _require(actor, "change", tip)
    except PermissionDenied:
        return False
    return True


def _require(actor, action: str, tip: Tip) -> None:
    shared = tip.company_id is None
    require(actor, perm(Tip, action), None if shared else tip,
            elsewhere="This tip belongs to another company.")
    if shared and actor is not None and not actor.has_role(Role.ADMINISTRATOR):
        raise PermissionDenied("Only Administrators can change the tips Mailroom ships "
                               "(they are shown in every company).")


def validate_body(source: str, *, label: str = "Description") -> list[str]:
    """Problems of a tip's description, each naming the line; [] when it is fine."""
    if not source.strip():
        return [f"{label}: write the tip."]
    try:
        compile_template(source, name="tip", field=label.lower(), html=True)
    except TemplateError as exc:
        return [str(exc)]
    problems = []
    for unknown in unknown_paths(source, selection.SCHEMA):
        hint = unknown.hint or (f"did you mean {' or '.join(unknown.suggestions[:2])}?"
                                if unknown.suggestions else "")
        problems.append(f"{label}, line {unknown.line}: '{unknown.path}' is not available in "
                        "tips (only user.name, user.first_name and company.name)"
                        + (f"; {hint}" if hint else "."))
    if problems:
        return problems
    try:
        render_string(source, _SAMPLE, name="tip", field=label.lower(), html=True)
    except TemplateError as exc:
        return [str(exc)]
    return []


def _check(tip: Tip, translations: Sequence[TipTranslation]) -> None:
    errors: dict[str, list[str]] = {}
    if not (tip.title or "").strip():
        errors["title"] = ["Give the tip a title."]
    known_roles = {r.value for r in Role}
    if not isinstance(tip.roles, list) or any(r not in known_roles for r in tip.roles):
        errors["roles"] = ["Choose roles from the list."]
    known_types = {t.key for t in record_types.all_types()}
    if not isinstance(tip.record_types, list) or any(
            t not in known_types for t in tip.record_types):
        errors["record_types"] = ["Choose record types from the list."]
    body = validate_body(tip.body or "")
    if body:
        errors["body"] = body
    seen = set()
    for tr in translations:
        if tr.language in seen:
            errors.setdefault("translations", []).append(
                f"Two translations in {tr.get_language_display()}.")
        seen.add(tr.language)
        found = validate_body(tr.body or "",
                              label=f"Description ({tr.get_language_display()})")
        if found:
            errors.setdefault("translations", []).extend(found)
    if errors:
        raise ValidationError(errors)


def save_tip(tip: Tip, *, actor,
             translations: Sequence[TipTranslation] | None = None) -> Tip:
    """Create or update a tip (and, given, replace its translations)."""
    creating = tip.pk is None
    _require(actor, "add" if creating else "change", tip)
    current = list(tip.translations.all()) if tip.pk else []
    _check(tip, translations if translations is not None else current)
    before = None if creating else snapshot(Tip.objects.get(pk=tip.pk), AUDITED)
    with transaction.atomic():
        tip.save()
        if translations is not None:
            tip.translations.all().delete()
            for tr in translations:
                tr.tip, tr.pk = tip, None
            TipTranslation.objects.bulk_create(translations)
        audit("digests.tip." + ("create" if creating else "change"), actor=actor, obj=tip,
              company=tip.company, before=before, after=snapshot(tip, AUDITED))
    return tip


def set_active(tip: Tip, active: bool, *, actor) -> Tip:
    _require(actor, "change", tip)
    before = snapshot(tip, ["active"])
    with transaction.atomic():
        tip.active = active
        tip.save(update_fields=["active"])
        audit("digests.tip.change", actor=actor, obj=tip, company=tip.company, before=before,
              after=snapshot(tip, ["active"]))
    return tip


def delete_tip(tip: Tip, *, actor) -> None:
    _require(actor, "delete", tip)
    with transaction.atomic():
        audit("digests.tip.delete", actor=actor, obj=tip, company=tip.company,
              before=snapshot(tip, AUDITED))
        tip.delete()


# --- what the links of an email do --------------------------------------------------------------

def record_click(tip_id: int, user_id: int) -> None:
    """One click on a link of a tip: the user's TipView and the tip's click count. A tip or
    user deleted since the mail went out counts nothing (the redirect still works)."""
    if not (Tip.objects.filter(pk=tip_id).exists() and User.objects.filter(pk=user_id).exists()):
        return
    with transaction.atomic():
        updated = TipView.objects.filter(tip_id=tip_id, user_id=user_id).update(
            clicks=F("clicks") + 1)
        if not updated:
            view, _ = TipView.objects.get_or_create(
                tip_id=tip_id, user_id=user_id,
                defaults={"shown_count": 0, "last_shown_at": timezone.now()})
            TipView.objects.filter(pk=view.pk).update(clicks=F("clicks") + 1)
        Tip.objects.filter(pk=tip_id).update(click_count=F("click_count") + 1)


def record_vote(tip_id: int, user_id: int, answer: str) -> Tip:
    """The user's answer to "Was this useful?". The tip's yes/no counts are recounted from
    the TipView rows (one vote per user), so a changed mind moves one vote across and a second
    identical POST changes nothing."""
    if answer not in {v.value for v in TipView.Vote}:
        raise ValidationError("Answer yes or no.")
    with transaction.atomic():
        tip = Tip.objects.select_for_update().filter(pk=tip_id).first()
        if tip is None or not User.objects.filter(pk=user_id).exists():
            raise ValidationError("This tip no longer exists.")
        TipView.objects.update_or_create(
            tip_id=tip_id, user_id=user_id, defaults={"vote": answer},
            create_defaults={"vote": answer, "shown_count": 0,
                             "last_shown_at": timezone.now()})
        counts = TipView.objects.filter(tip_id=tip_id).aggregate(
            yes=Count("pk", filter=Q(vote=TipView.Vote.YES)),
            no=Count("pk", filter=Q(vote=TipView.Vote.NO)))
        tip.useful_yes, tip.useful_no = counts["yes"], counts["no"]
        tip.save(update_fields=["useful_yes", "useful_no"])
    return tip


# --- a tip on its own, now --------------------------------------------------------------------

def notification_targets(tip: Tip, company) -> list[User]:
    """The company's active users the tip targets (roles and record types)."""
    users = list(User.objects.filter(companies=company, is_active=True).order_by("pk"))
    targeted = selection.eligible(users, company, [tip])
    return [u for u in users if targeted[u.pk]]


def send_as_notification(tip: Tip, *, actor, company) -> dict[str, int]:
    """Email `tip` now to every active user of `company` it targets, in the company's branded
    layout (activities' mail helper), each in their language with their own signed links.
    Every target also finds it in their Inbox (tip_inbox); users who chose "In Mailroom
    only" get no email. Counted as a show for those emailed."""
    require(actor, perm(Tip, "change"), company,
            elsewhere="You can only send tips to your own companies.")
    if tip.company_id not in (None, company.pk):
        raise PermissionDenied("This tip belongs to another company.")
    if not tip.active:
        raise ValidationError("This tip is switched off: switch it on before sending it.")
    now = timezone.now()
    sent, skipped = [], 0
    with transaction.atomic():
        targets = notification_targets(tip, company)
        for user in targets:
            title, body = selection.render(tip, user, company)
            queued = house_mail.send(company, user, subject=title,
                                     template="digests/tip_notification.html",
                                     context={"title": title, "body": body,
                                              "vote": links(tip, user)})
            if queued is None:
                skipped += 1
            else:
                sent.append(user)
        selection.record_shown([(tip, user) for user in sent], now=now)
        for user in targets:
            view, _ = TipView.objects.get_or_create(tip=tip, user=user,
                                                    defaults={"last_shown_at": now})
            view.notified_at, view.notice_read = now, False
            view.save(update_fields=["notified_at", "notice_read"])
        audit("digests.tip.send", actor=actor, obj=tip, company=company,
              after={"emailed": len(sent), "not_emailed": skipped})
    return {"sent": len(sent), "skipped": skipped}
