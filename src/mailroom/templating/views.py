"""Template preview and test send, the composer on every record, and mass sending.

Plain function views (Healthchecks style). Records load through `get_record_for_user` and
templates through `EmailTemplate.objects.for_user`, so another company's row is a 404; every
write goes through `templating.services`. Errors answer 422 with the partial carrying a red
line (chatter.js already tells htmx to swap 422 like 200).
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.views.decorators.http import require_GET, require_POST

from mailroom.chatter.services import get_record_for_user
from mailroom.contacts.models import Partner
from mailroom.core import record_types
from mailroom.core.decorators import office_user_required
from mailroom.documents.registry import has_document
from mailroom.lib.params import parse_id, parse_ids, parse_int
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.services import FileToSend, enqueue
from mailroom.templating import actions, services
from mailroom.templating.forms import ComposerForm, MassForm, PreviewForm
from mailroom.templating.models import EmailTemplate
from mailroom.templating.rendering import render_template

RECENT = 20
CHUNK = 20


def _template(request, template_id: int) -> EmailTemplate:
    return get_object_or_404(EmailTemplate.objects.for_user(request.user), pk=template_id)


def _model_of(template: EmailTemplate):
    try:
        return record_types.get(template.record_type).model
    except LookupError:
        raise Http404("Unknown record type.") from None


def recent_records(template: EmailTemplate, user) -> list:
    """The preview's record choices: the 20 most recent of the current company."""
    return list(_model_of(template).objects.for_current_company(user).order_by("-pk")[:RECENT])


def _error_lines(exc: Exception) -> list[str]:
    if isinstance(exc, TemplateError):
        return [str(exc)]
    return list(getattr(exc, "messages", [str(exc)]))


# --- preview and test ------------------------------------------------------------------------

def _render_for(request, template):
    """(form, record, rendered, errors) for the preview's GET parameters."""
    form = PreviewForm(request.GET or None)
    if not form.is_valid():
        return form, None, None, ["Choose a record to preview."]
    record = _model_of(template).objects.for_user(request.user).filter(
        pk=form.cleaned_data["record"]).first()
    if record is None:
        return form, None, None, ["No such record in your companies."]
    try:
        rendered = render_template(template, record, user=request.user,
                                   lang=form.cleaned_data["lang"] or None)
    except (TemplateError, ValidationError) as exc:
        return form, record, None, _error_lines(exc)
    return form, record, rendered, []


@office_user_required
@require_GET
def preview(request, template_id: int):
    """The rendered mail for one record and language: subject, recipients, files, HTML."""
    template = _template(request, template_id)
    form, record, rendered, errors = _render_for(request, template)
    return render(request, "templating/partials/preview.html", {
        "template": template, "form": form, "record": record, "rendered": rendered,
        "errors": errors}, status=422 if errors and record is not None else 200)


@office_user_required
@require_POST
def send_test(request, template_id: int):
    """"Send a test to me": only to the signed-in user's address, never to the recipients,
    and never logged on the record (it is not part of its history)."""
    template = _template(request, template_id)
    request.GET = request.POST  # the preview form's fields travel with the button
    _form, record, rendered, errors = _render_for(request, template)
    ok = ""
    if not errors and not request.user.email:
        errors = ["Your user has no email address."]
    if not errors:
        try:
            enqueue(company=record.company, actor=request.user,
                    email_from=rendered.email_from or services.default_sender(record,
                                                                              request.user),
                    to=[request.user.email], subject=f"[Test] {rendered.subject}",
                    html=rendered.html, text=rendered.text, attachments=rendered.attachments,
                    server=template.server)
        except (ValidationError, PermissionDenied) as exc:
            errors = _error_lines(exc)
        else:
            ok = f"A test was queued to {request.user.email}."
    return render(request, "templating/partials/test_result.html",
                  {"ok": ok, "errors": errors}, status=422 if errors else 200)


# --- composer --------------------------------------------------------------------------------

def _usable(record, user):
    record_type = record_types.for_model(record)
    return EmailTemplate.objects.for_user(user).usable_for(record.company, record_type.key)


def _initial(record, template, user) -> tuple[dict, list[str]]:
    """The composer's fields filled from `template` rendered for `record`."""
    initial = {"template": template, "lang": record.company.language, "when": "now",
               "attach_document": False}
    if template is None:
        initial["subject"] = str(record)
        return initial, []
    try:
        rendered = render_template(template, record, user=user, with_attachments=False)
    except (TemplateError, ValidationError) as exc:
        return initial, _error_lines(exc)
    initial.update(subject=rendered.subject, body=rendered.body, lang=rendered.lang,
                   partners=[p.pk for p in rendered.to if isinstance(p, Partner)],
                   to=", ".join(a for a in rendered.to if isinstance(a, str)),
                   cc=", ".join(rendered.cc),
                   attach_document=template.attach_document and has_document(record))
    if rendered.scheduled_at:
        initial.update(when="later", scheduled_at=rendered.scheduled_at)
    return initial, []


def _composer_context(request, record, form, errors=(), **extra) -> dict:
    content_type = ContentType.objects.get_for_model(record)
    return {**admin.site.each_context(request), "record": record, "form": form,
            "errors": list(errors), "record_url": _record_path(record),
            "has_document": has_document(record), "title": f"Send email: {record}",
            "urls": {"compose": reverse("templating:compose",
                                        args=[content_type.pk, record.pk]),
                     "fill": reverse("templating:compose_fill",
                                     args=[content_type.pk, record.pk])}, **extra}


def _record_path(record) -> str:
    meta = record._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[record.pk])
    except NoReverseMatch:
        return reverse("admin:index")


@office_user_required
def compose(request, content_type_id: int, object_id: int):
    """GET: the composer filled from the record's default template (or `?template=`);
    POST: send through `services.send_composed` with the form's idempotency key."""
    record = get_record_for_user(content_type_id, object_id, request.user)
    templates = _usable(record, request.user)
    if request.method == "POST":
        return _send(request, record, templates)
    template = None
    template_id = parse_id(request.GET.get("template", ""))
    if template_id is not None:
        template = templates.filter(pk=template_id).first()
    elif "template" not in request.GET:
        action = actions.default_action_for(record_types.for_model(record).key)
        template = actions.default_template(record.company, action.key) if action else None
    initial, errors = _initial(record, template, request.user)
    initial["key"] = uuid.uuid4().hex
    form = ComposerForm(initial=initial, record=record, templates=templates)
    return render(request, "templating/compose.html",
                  _composer_context(request, record, form, errors))


@office_user_required
@require_GET
def compose_from_panel(request):
    """The chatter panel's "Send email…": it knows its own URL (`?panel=/chatter/<ct>/<id>/`),
    not the composer's, so this resolves it instead of the chatter learning our routes."""
    try:
        match = resolve(request.GET.get("panel", ""))
    except Resolver404:
        raise Http404("No such record.") from None
    if match.view_name != "chatter:panel":
        raise Http404("No such record.")
    return HttpResponseRedirect(reverse("templating:compose", kwargs=match.kwargs))


@office_user_required
@require_GET
def compose_fill(request, content_type_id: int, object_id: int):
    """htmx: the editable fields again after the template select changed (the key stays)."""
    record = get_record_for_user(content_type_id, object_id, request.user)
    templates = _usable(record, request.user)
    template_id = parse_id(request.GET.get("template", ""))
    template = templates.filter(pk=template_id).first() if template_id is not None else None
    initial, errors = _initial(record, template, request.user)
    initial["key"] = request.GET.get("key") or uuid.uuid4().hex
    form = ComposerForm(initial=initial, record=record, templates=templates)
    return render(request, "templating/partials/compose_fields.html",
                  _composer_context(request, record, form, errors))


def _send(request, record, templates):
    form = ComposerForm(request.POST, request.FILES, record=record, templates=templates)
    errors: list[str] = []
    if form.is_valid():
        data = form.cleaned_data
        files = [FileToSend(f.name, f.read(), f.content_type or "application/octet-stream")
                 for f in data["files"]]
        composed = services.Composed(
            subject=data["subject"], body=data["body"],
            to=[*data["partners"], *form.addresses("to")], cc=form.addresses("cc"),
            template=data["template"], lang=data["lang"], attachments=files,
            attach_document=data["attach_document"], scheduled_at=data["scheduled_at"])
        try:
            mail = services.send_composed(record, composed, actor=request.user,
                                          idempotency_key=f"compose:{data['key']}")
        except (ValidationError, TemplateError, PermissionDenied) as exc:
            errors = _error_lines(exc)
        else:
            when = (f"scheduled for {mail.scheduled_at:%d %b %Y %H:%M}"
                    if data["scheduled_at"] else "queued")
            messages.success(request, f"Your email “{mail.subject}” is {when}.")
            target = _record_path(record)
            if request.htmx:
                from django_htmx.http import HttpResponseClientRedirect

                return HttpResponseClientRedirect(target)
            return HttpResponseRedirect(target)
    template = "templating/partials/compose_fields.html" if request.htmx else (
        "templating/compose.html")
    return render(request, template, _composer_context(request, record, form, errors),
                  status=422)


# --- mass mode -------------------------------------------------------------------------------

def mass_page(request, queryset):
    """The admin action's answer: choose a template for the selected records."""
    model = queryset.model
    record_type = record_types.for_model(model)
    if record_type is None:  # the action is offered on a list whose rows have no chatter
        messages.error(request, f"{model._meta.verbose_name_plural.capitalize()} cannot be "
                                "sent email from here.")
        return None
    ids = list(queryset.for_user(request.user).values_list("pk", flat=True))
    templates = EmailTemplate.objects.for_current_company(request.user).filter(
        record_type=record_type.key, active=True)
    action = actions.default_action_for(record_type.key)
    default = actions.default_template(request.user.current_company, action.key) if (
        action and request.user.current_company_id) else None
    form = MassForm(templates=templates, initial={"template": default})
    return render(request, "templating/mass.html", {
        **admin.site.each_context(request), "form": form, "ids": ",".join(map(str, ids)),
        "count": len(ids), "record_type": record_type, "batch": uuid.uuid4().hex,
        "content_type": ContentType.objects.get_for_model(model), "chunk": CHUNK,
        "title": f"Send email to {len(ids)} {record_type.label_plural.lower()}",
        "back": reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
    })


@office_user_required
@require_POST
def mass_chunk(request):
    """Send one chunk: records `ids[offset:offset+20]`, batch id for idempotency. Answers the
    progress and, while records remain, the request for the next chunk (hx-trigger=load)."""
    content_type = get_object_or_404(
        ContentType, pk=parse_id(request.POST.get("content_type", "")) or 0)
    record_type = record_types.for_model(content_type.model_class()) if (
        content_type.model_class()) else None
    if record_type is None:
        raise Http404("No such record type.")
    templates = EmailTemplate.objects.for_user(request.user).filter(
        record_type=record_type.key, active=True)
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
    chunk = ids[offset:offset + CHUNK]
    found = {r.pk: r for r in record_type.model.objects.for_user(request.user).filter(
        pk__in=chunk)}
    errors = [f"#{pk}: no such record in your companies." for pk in chunk if pk not in found]
    results = services.send_mass([found[pk] for pk in chunk if pk in found],
                                 form.cleaned_data["template"], actor=request.user, batch=batch)
    errors += [f"{r.record}: {r.error}" for r in results if r.error]
    done = min(offset + CHUNK, len(ids))
    return render(request, "templating/partials/mass_progress.html", {
        "errors": errors, "done": done, "total": len(ids),
        "sent": sum(1 for r in results if r.mail), "percent": 100 * done // max(len(ids), 1),
        "next": {"offset": done} if done < len(ids) else None,
        "post": request.POST, "url": reverse("templating:mass_chunk")})
