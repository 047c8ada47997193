"""Mass sending from a record list: the page (who gets the mail, who is skipped and why, a
preview of the first), the review that follows the template select, and the chunks.

One batch id per selection: it is derived from the action's own POST (the list's CSRF token
and the selected ids), so reloading the page — which posts the same form again — finds the
same batch, shows it as sent and queues nothing twice (`services.send_mass` keys each mail
"mass:<batch>:<record>"). Choosing the records again on the list starts a new batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from mailroom.core import record_types
from mailroom.core.decorators import office_user_required
from mailroom.lib.params import parse_id, parse_ids, parse_int
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import actions, mass_render, mass_services, services
from mailroom.templating.forms import MassForm
from mailroom.templating.mass_models import MassSend
from mailroom.templating.models import EmailTemplate
from mailroom.templating.rendering import RenderedMail

CHUNK = mass_services.CHUNK
REVIEWED = 100  # rows the page checks before sending; the worker checks every record


@dataclass
class Row:
    record: object
    skip: str = ""  # why no mail goes to this record ("" = it gets one)
    to: str = ""
    rendered: RenderedMail | None = None


def review(record, template: EmailTemplate, user,
           renderer: mass_render.MassRenderer | None = None) -> Row:
    """Whether `record` gets `template`'s mail, to whom, or why it is skipped: a cancelled
    document, no address, every recipient blacklisted, or a template error (the checks the
    worker makes too, mass_render.review)."""
    early = mass_render.review(record, None)
    if early.skip:
        return Row(record, early.skip)
    renderer = renderer or mass_render.MassRenderer(template, user=user)
    try:
        rendered = renderer.render(record)
    except TemplateError as exc:
        return Row(record, f"Template error: {exc}")
    except ValidationError as exc:
        return Row(record, "; ".join(exc.messages))
    verdict = mass_render.review(record, rendered)
    return Row(record, verdict.skip, to=verdict.to, rendered=rendered)


def _batch_sent(batch: str, company_ids) -> int:
    return OutgoingMail.objects.filter(company_id__in=company_ids,
                                       idempotency_key__startswith=f"mass:{batch}:").count()


def _review_context(request, model, ids: list[int], template: EmailTemplate | None) -> dict:
    """The first REVIEWED records checked and previewed; a larger selection says how many
    more the worker checks when it sends."""
    shown = ids[:REVIEWED]
    records = {r.pk: r for r in model.objects.for_user(request.user).filter(pk__in=shown)}
    renderer = mass_render.MassRenderer(template, user=request.user) if template else None
    rows = [review(records[pk], template, request.user, renderer) if template
            else Row(records[pk]) for pk in shown if pk in records]
    first = next((row for row in rows if not row.skip and row.rendered), None)
    unchecked = max(len(ids) - len(shown), 0)
    return {"rows": rows, "template": template, "first": first, "unchecked": unchecked,
            "sending": sum(1 for row in rows if not row.skip) + unchecked,
            "skipped": sum(1 for row in rows if row.skip)}


def mass_page(request, queryset):
    """The admin action's answer: choose a template for the selected records."""
    model = queryset.model
    record_type = record_types.for_model(model)
    if record_type is None:  # the action is offered on a list whose rows have no chatter
        messages.error(request, f"{model._meta.verbose_name_plural.capitalize()} cannot be "
                                "sent email from here.")
        return None
    ids = list(queryset.for_user(request.user).order_by("pk").values_list("pk", flat=True))
    templates = EmailTemplate.objects.for_current_company(request.user).filter(
        record_type=record_type.key, active=True)
    action = actions.default_action_for(record_type.key)
    default = actions.default_template(request.user.current_company, action.key) if (
        action and request.user.current_company_id) else None
    if default is None:
        default = templates.first()
    form = MassForm(templates=templates, initial={"template": default})
    content_type = ContentType.objects.get_for_model(model)
    seed = f"{request.user.pk}:{content_type.pk}:{ids}:" + request.POST.get(
        "csrfmiddlewaretoken", "")
    batch = hashlib.sha256(seed.encode()).hexdigest()[:32]
    return render(request, "templating/mass.html", {
        **admin.site.each_context(request), **_review_context(request, model, ids, default),
        "form": form, "ids": ",".join(map(str, ids)), "count": len(ids),
        "record_type": record_type, "batch": batch, "content_type": content_type,
        "chunk": CHUNK, "already_sent": _batch_sent(batch, request.user.company_ids()),
        "title": f"Send email to {len(ids)} {record_type.label_plural.lower()}",
        "back": reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
    })


def _record_type(request):
    content_type = get_object_or_404(
        ContentType, pk=parse_id(request.POST.get("content_type", "") or
                                 request.GET.get("content_type", "")) or 0)
    model = content_type.model_class()
    record_type = record_types.for_model(model) if model else None
    if record_type is None:
        raise Http404("No such record type.")
    templates = EmailTemplate.objects.for_user(request.user).filter(
        record_type=record_type.key, active=True)
    return record_type, templates


@office_user_required
@require_GET
def mass_review(request):
    """htmx: who gets the chosen template's mail, who is skipped and why, and the first
    mail's preview — again after the template select changed."""
    record_type, templates = _record_type(request)
    ids = parse_ids(request.GET.get("ids", ""))
    form = MassForm(request.GET, templates=templates)
    if ids is None or not form.is_valid():
        return render(request, "templating/partials/mass_review.html",
                      {"errors": ["Choose a template."], "rows": []}, status=422)
    return render(request, "templating/partials/mass_review.html", {**_review_context(
        request, record_type.model, ids, form.cleaned_data["template"]), "oob": True})


@office_user_required
@require_POST
def mass_chunk(request):
    """Send one chunk: records `ids[offset:offset+20]`, batch id for idempotency. Answers the
    progress and, while records remain, the request for the next chunk (hx-trigger=load).
    Records the review skips (cancelled, no address, blacklisted) get no mail."""
    record_type, templates = _record_type(request)
    form = MassForm(request.POST, templates=templates)
    batch = "".join(c for c in request.POST.get("batch", "") if c.isalnum())[:40]
    if not form.is_valid() or not batch:
        return render(request, "templating/partials/mass_progress.html", {
            "errors": ["Choose a template."], "done": 0, "total": 0}, status=422)
    ids = parse_ids(request.POST.get("ids", ""))
    offset = parse_int(request.POST.get("offset", "") or "0")
    if ids is None or offset is None:
        return render(request, "templating/partials/mass_progress.html", {
            "errors": ["The selection or the position in it is invalid: start again from "
                       "the list."], "done": 0, "total": 0}, status=422)
    template = form.cleaned_data["template"]
    if offset == 0 and mass_services.in_worker(template, len(ids)):
        return _start_in_worker(request, template, record_type, ids, batch)
    chunk = ids[offset:offset + CHUNK]
    found = {r.pk: r for r in record_type.model.objects.for_user(request.user).filter(
        pk__in=chunk)}
    errors = [f"#{pk}: no such record in your companies." for pk in chunk if pk not in found]
    renderer = mass_render.MassRenderer(template, user=request.user)
    rows = [review(found[pk], template, request.user, renderer) for pk in chunk
            if pk in found]
    errors += [f"{row.record}: skipped — {row.skip}" for row in rows if row.skip]
    results = services.send_mass([row.record for row in rows if not row.skip], template,
                                 actor=request.user, batch=batch)
    errors += [f"{r.record}: {r.error}" for r in results if r.error]
    done = min(offset + CHUNK, len(ids))
    return render(request, "templating/partials/mass_progress.html", {
        "errors": errors, "done": done, "total": len(ids),
        "sent": sum(1 for r in results if r.mail), "percent": 100 * done // max(len(ids), 1),
        "next": {"offset": done} if done < len(ids) else None,
        "post": request.POST, "url": reverse("templating:mass_chunk")})


def _start_in_worker(request, template, record_type, ids, batch):
    """A large selection: the worker renders and queues it (mass_engine.py); the page
    follows its progress."""
    company = request.user.current_company
    if company is None:
        return render(request, "templating/partials/mass_progress.html", {
            "errors": ["Choose a company first (top bar)."], "done": 0, "total": 0},
            status=422)
    content_type = ContentType.objects.get_for_model(record_type.model)
    try:
        job = mass_services.start_mass(template, content_type, ids, actor=request.user,
                                       company=company, batch=batch)
    except ValidationError as exc:
        return render(request, "templating/partials/mass_progress.html", {
            "errors": exc.messages, "done": 0, "total": 0}, status=422)
    return _job_answer(request, job)


def _job_answer(request, job: MassSend):
    waiting = (job.state == MassSend.State.QUEUED
               and (timezone.now() - job.created_at).total_seconds() > 60)
    return render(request, "templating/partials/mass_job.html", {
        "job": job, "waiting_long": waiting, "problems": job.problems[:200]})


@office_user_required
@require_GET
def mass_job(request, job_id: int):
    """htmx: a worker-run mass send's progress (polled until it is finished)."""
    job = get_object_or_404(MassSend, pk=job_id, company_id__in=request.user.company_ids())
    return _job_answer(request, job)


@office_user_required
@require_POST
def mass_cancel(request, job_id: int):
    job = get_object_or_404(MassSend, pk=job_id, company_id__in=request.user.company_ids())
    return _job_answer(request, mass_services.cancel_mass(job, actor=request.user))
