"""Template preview and test send, the composer on every record, and mass sending.

Plain function views (Healthchecks style). Records load through `get_record_for_user` and
templates through `EmailTemplate.objects.for_user`, so another company's row is a 404; every
write goes through `templating.services`. Errors answer 422 with the partial carrying a red
line (chatter.js already tells htmx to swap 422 like 200).
"""

from __future__ import annotations

import copy
import uuid

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailroom.chatter.services import get_record_for_user
from mailroom.contacts.models import Partner
from mailroom.core import record_types
from mailroom.core.decorators import office_user_required
from mailroom.documents.registry import has_document
from mailroom.lib.params import parse_id
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing.services import FileToSend, enqueue
from mailroom.templating import actions, mass_views, services
from mailroom.templating.forms import ComposerForm, PreviewForm
from mailroom.templating.models import EmailTemplate
from mailroom.templating.pickers import followers_to_propose
from mailroom.templating.rendering import RenderedMail, finish_html, render_template

RECENT = 20


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

def with_edits(template: EmailTemplate, data, user) -> EmailTemplate:
    """`template` with the editor's unsaved fields (`src_<field>` in `data`) in place of the
    saved ones, checked as saving would check them (ValidationError). Not saved: a copy."""
    fields = [name for name, _label, _html in services.TEMPLATED_FIELDS] + ["layout"]
    edits = {name: data[f"src_{name}"] for name in fields if f"src_{name}" in data}
    if not edits:
        return template
    probe = copy.copy(template)
    for name, value in edits.items():
        setattr(probe, name, value)
    if probe.layout not in EmailTemplate.Layout.values:
        probe.layout = template.layout
    services.validate_sources(probe, [], simple_only=not services.is_template_editor(user))
    return probe


def _render_for(request, template, data):
    """(form, record, rendered, errors) for the preview's parameters: the record, the
    language, and the editor's unsaved fields (`with_edits`)."""
    form = PreviewForm(data or None)
    if not form.is_valid():
        return form, None, None, ["Choose a record to preview."]
    record = _model_of(template).objects.for_user(request.user).filter(
        pk=form.cleaned_data["record"]).first()
    if record is None:
        return form, None, None, ["No such record in your companies."]
    try:
        rendered = render_template(with_edits(template, data, request.user), record,
                                   user=request.user, lang=form.cleaned_data["lang"] or None)
    except (TemplateError, ValidationError) as exc:
        return form, record, None, _error_lines(exc)
    return form, record, rendered, []


@office_user_required
@require_http_methods(["GET", "POST"])
def preview(request, template_id: int):
    """The rendered mail for one record and language: subject, recipients, files, HTML —
    of the text in the editor (POST `src_subject`, `src_body_html`…), saved or not."""
    template = _template(request, template_id)
    form, record, rendered, errors = _render_for(
        request, template, request.POST if request.method == "POST" else request.GET)
    return render(request, "templating/partials/preview.html", {
        "template": template, "form": form, "record": record, "rendered": rendered,
        "errors": errors}, status=422 if errors and record is not None else 200)


@office_user_required
@require_POST
def send_test(request, template_id: int):
    """"Send a test to me": only to the signed-in user's address, never to the recipients,
    and never logged on the record (it is not part of its history)."""
    template = _template(request, template_id)
    # the preview form's fields (and the editor's unsaved text) travel with the button
    _form, record, rendered, errors = _render_for(request, template, request.POST)
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
                   to=[a for a in rendered.to if isinstance(a, str)], cc=list(rendered.cc),
                   attach_document=template.attach_document and has_document(record))
    if rendered.scheduled_at:
        initial.update(when="later", scheduled_at=rendered.scheduled_at)
    return initial, []


def _composer_context(request, record, form, errors=(), **extra) -> dict:
    content_type = ContentType.objects.get_for_model(record)
    return {**admin.site.each_context(request), "record": record, "form": form,
            "errors": list(errors), "record_url": _record_path(record),
            "has_document": has_document(record), "title": f"Send email: {record}",
            "followers": followers_to_propose(record, request.user),
            "chips": {name: form.chips(name) for name in ("partners", "to", "cc")},
            "urls": {name: reverse(f"templating:{route}", args=[content_type.pk, record.pk])
                     for name, route in [("compose", "compose"), ("fill", "compose_fill"),
                                         ("recipients", "compose_recipients"),
                                         ("preview", "compose_preview")]}, **extra}


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


@office_user_required
@require_POST
def compose_preview(request, content_type_id: int, object_id: int):
    """htmx: the mail as it would leave with the composer's current (unsaved) subject, body
    and recipients, in the template's layout. Nothing is written."""
    record = get_record_for_user(content_type_id, object_id, request.user)
    templates = _usable(record, request.user)
    template_id = parse_id(request.POST.get("template", ""))
    template = templates.filter(pk=template_id).first() if template_id is not None else None
    form = ComposerForm(request.POST, record=record, templates=templates)
    form.is_valid()  # the preview shows what there is; Send reports what is missing
    to = [*form.chips("partners"), *form.chips("to")]
    lang = form.cleaned_data.get("lang") or record.company.language
    rendered = RenderedMail(template=template, lang=lang, lang_missing=False,
                            subject=request.POST.get("subject", "").strip(),
                            body=request.POST.get("body", ""), to=to, cc=form.chips("cc"))
    finish_html(rendered, record.company, template.layout if template is not None else
                EmailTemplate.Layout.BRANDED)
    return render(request, "templating/partials/preview.html",
                  {"rendered": rendered, "errors": []})


# the mass sender lives in mass_views; the admin action (apps.py) imports it from here
mass_page = mass_views.mass_page
