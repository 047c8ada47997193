"""/letters/…: the "Send by Post" page of a record, the letter PDF and the print batch PDF.

Every page looks its row up among the viewer's companies: another company's letter, batch or
record is a 404, exactly like a missing one. Writes go through `letters.services`.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailroom.core.access import allowed
from mailroom.core.blobs import BlobError, BlobMissing, open_blob
from mailroom.core.decorators import office_user_required
from mailroom.letters import lifecycle, services
from mailroom.letters.models import Letter, PostalProvider, PrintBatch
from mailroom.letters.providers import ProviderError, provider_for
from mailroom.letters.providers import local as print_room
from mailroom.letters.services import LetterOptions
from mailroom.lib.params import parse_ids, parse_int

Postage = Letter.Postage


def _pdf_response(sha256: str, filename: str, download: bool):
    if not sha256:
        raise Http404("The PDF is not in the file store.")
    try:
        handle = open_blob(sha256)
    except BlobMissing:
        raise Http404("The PDF is not in the file store.") from None
    except BlobError:
        return HttpResponse("The file store cannot be reached just now; try again in a minute.",
                            status=503, content_type="text/plain; charset=utf-8")
    response = FileResponse(handle, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(download, filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@office_user_required
def letter_pdf(request, pk: int):
    """The exact PDF that was (or will be) posted, to those who may see the letter."""
    if not allowed(request.user, "letters.view_letter"):
        raise Http404("No such letter.")
    letter = Letter.objects.for_user(request.user).filter(pk=pk).first()
    if letter is None:
        raise Http404("No such letter.")
    return _pdf_response(letter.pdf_sha256, f"Letter {letter.pk} – {letter.record_label}.pdf",
                         request.GET.get("download") == "1")


@require_GET
@office_user_required
def batch_pdf(request, pk: int):
    if not allowed(request.user, "letters.view_printbatch"):
        raise Http404("No such print batch.")
    batch = PrintBatch.objects.for_user(request.user).filter(pk=pk).first()
    if batch is None:
        raise Http404("No such print batch.")
    if not batch.letter_count and not batch.pdf_sha256:
        raise Http404("This print batch has no letters.")

    batch = print_room.batch_pdf(batch)
    return _pdf_response(batch.pdf_sha256, f"Print batch {batch.pk} {batch.day}.pdf",
                         request.GET.get("download") == "1")


def _record(request, content_type_id: int, object_id: int):
    try:
        content_type = ContentType.objects.get_for_id(content_type_id)
    except ContentType.DoesNotExist:
        raise Http404("No such record type.") from None
    model = content_type.model_class()
    if model is None or not hasattr(model.objects, "for_user"):
        raise Http404("No such record type.")
    record = model.objects.for_user(request.user).filter(pk=object_id).first()
    if record is None:
        raise Http404("No such record.")
    return record


def record_admin_url(record) -> str:
    meta = record._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[record.pk])
    except NoReverseMatch:
        return reverse("admin:index")


def _options(request, providers) -> LetterOptions:
    data = request.POST if request.method == "POST" else request.GET
    provider = None
    if data.get("provider"):
        provider = providers.filter(pk=data.get("provider")).first()
    postage = data.get("postage", Postage.STANDARD)
    submitted = "postage" in data  # an unticked checkbox sends nothing
    return LetterOptions(
        color=data.get("color") == "on",
        duplex=data.get("duplex") == "on" if submitted else True,
        cover_page=data.get("cover_page") == "on",
        postage=postage if postage in Postage.values else Postage.STANDARD,
        provider=provider,
        attachments=[(f.name, f.read()) for f in request.FILES.getlist("attachments")],
    )


@require_http_methods(["GET", "POST"])
@office_user_required
def send_page(request, content_type_id: int, object_id: int):
    """The address as it will print, the page count and the price; red lines for what stops
    the letter. POST sends it."""
    record = _record(request, content_type_id, object_id)
    if not allowed(request.user, "letters.add_letter"):
        raise PermissionDenied("Your roles do not allow you to send letters.")
    providers = PostalProvider.objects.for_user(request.user).filter(
        company_id=record.company_id, active=True)
    options = _options(request, providers)
    back = record_admin_url(record)
    errors: list[str] = []
    if request.method == "POST":
        try:
            letter = services.send_by_post(record, actor=request.user, options=options)
        except ValidationError as exc:
            errors = exc.messages
        else:
            messages.success(request, f"The letter to {letter.address_name} is queued "
                                      f"({letter.pages} page(s)).")
            return HttpResponseRedirect(reverse("admin:letters_letter_change",
                                                args=[letter.pk]))
    preview = services.prepare(record, actor=request.user, options=options)
    return render(request, "letters/send.html", {
        **admin.site.each_context(request),
        "title": f"Send by post: {record}",
        "record": record, "preview": preview, "options": options, "errors": errors,
        "providers": providers, "postages": Postage.choices, "back": back,
        "previous": lifecycle.letters_for_record(record).select_related("provider")[:10],
    })


MASS_LIMIT = 200
CHUNK = 12  # letters per htmx round trip: the progress bar moves every second or so


def _mass_key(batch: str, content_type_id: int, record_id: int) -> uuid.UUID | None:
    """The idempotency key of one record's letter in one mass send: a chunk posted twice (a
    double click, a retried request) makes no second letter."""
    try:
        namespace = uuid.UUID(batch)
    except (TypeError, ValueError):
        return None
    return uuid.uuid5(namespace, f"{content_type_id}:{record_id}")


def _mass_options(data) -> LetterOptions:
    postage = data.get("postage")
    return LetterOptions(postage=postage if postage in Postage.values else Postage.STANDARD,
                         duplex=data.get("duplex") == "on", color=data.get("color") == "on",
                         cover_page=data.get("cover_page") == "on")


def _send_rows(request, rows, content_type_id: int, data) -> None:
    """Send the rows' letters (rendered side by side by the render pool); each row gets its
    letter or its problem in plain words."""
    rows = [row for row in rows if not row["problem"]]
    batch = data.get("batch", "")
    keys = {row["record"].pk: key for row in rows
            if (key := _mass_key(batch, content_type_id, row["record"].pk)) is not None}
    results = services.send_many_by_post([row["record"] for row in rows], actor=request.user,
                                         options=_mass_options(data), keys=keys)
    for row, result in zip(rows, results, strict=True):
        if isinstance(result, Exception):
            row["problem"] = "; ".join(getattr(result, "messages", [str(result)]))
        else:
            row["letter"] = result


@require_http_methods(["GET", "POST"])
@office_user_required
def send_many_page(request, content_type_id: int):
    """One letter per selected record (the list action "Send by post…"): each record's
    address checked first (red lines), then the letters go out in chunks of CHUNK with a
    progress bar (htmx), each in its own transaction, with a result per record. Without
    JavaScript one POST sends them all."""
    try:
        content_type = ContentType.objects.get_for_id(content_type_id)
    except ContentType.DoesNotExist:
        raise Http404("No such record type.") from None
    model = content_type.model_class()
    if model is None or not hasattr(model.objects, "for_user"):
        raise Http404("No such record type.")
    if not allowed(request.user, "letters.add_letter"):
        raise PermissionDenied("Your roles do not allow you to send letters.")
    data = request.POST if request.method == "POST" else request.GET
    ids = parse_ids(data.get("ids", ""), limit=MASS_LIMIT)
    if not ids:
        raise Http404(f"Choose between 1 and {MASS_LIMIT} records.")
    records = list(model.objects.for_user(request.user).filter(pk__in=ids).order_by("pk"))
    rows = []
    for record in records:
        partner = getattr(record, "partner", None)
        missing = services.check_address(partner)
        rows.append({"record": record, "url": record_admin_url(record),
                     "address": services.address_snapshot(partner)[1] if not missing else [],
                     "problem": services.missing_address_message(partner, missing)
                     if missing else "", "letter": None})
    ready = [row for row in rows if not row["problem"]]
    if request.method == "POST" and request.headers.get("HX-Request"):
        start = parse_int(data.get("offset", "0"), minimum=0) or 0
        chunk = ready[start:start + CHUNK]
        _send_rows(request, chunk, content_type_id, data)
        done = min(start + CHUNK, len(ready))
        return render(request, "letters/partials/mass_progress.html", {
            "rows": chunk, "done": done, "total": len(ready),
            "percent": int(done * 100 / len(ready)) if ready else 100,
            "next": done if done < len(ready) else None,
            "post": {key: data.get(key, "") for key in ("ids", "batch", "postage", "duplex",
                                                        "color", "cover_page")},
            "url": request.path,
        })
    sent = request.method == "POST"
    if sent:
        _send_rows(request, rows, content_type_id, data)
    return render(request, "letters/send_many.html", {
        **admin.site.each_context(request),
        "title": f"Send {len(rows)} {model._meta.verbose_name_plural} by post",
        "rows": rows, "sent": sent, "ids": ",".join(str(r["record"].pk) for r in rows),
        "ready": len(ready), "batch": uuid.uuid4().hex,
        "done": sum(1 for r in rows if r["letter"] is not None),
        "postages": Postage.choices,
        "back": reverse(f"admin:{content_type.app_label}_{content_type.model}_changelist"),
    })


@csrf_exempt
@require_POST
def provider_webhook(request, provider_id: int):
    """POST /letters/webhooks/<provider id>/: a provider's status events.

    The provider class verifies the signature (`parse_webhook` raises ProviderError with code
    "BAD_SIGNATURE": 403) and turns the body into events; each is recorded once per provider
    event id, so a replayed webhook changes nothing. Events for letters Mailroom does not know
    are acknowledged and ignored (the provider would otherwise retry them forever)."""

    row = PostalProvider.objects.filter(pk=provider_id, active=True).first()
    if row is None:
        return JsonResponse({"detail": "No such postal provider."}, status=404)
    try:
        events = provider_for(row).parse_webhook(request)
    except ProviderError as exc:
        status = 403 if exc.code == "BAD_SIGNATURE" else 400
        return JsonResponse({"detail": exc.message}, status=status)
    recorded = ignored = 0
    for provider_ref, event in events:
        letter = Letter.objects.filter(provider=row, provider_ref=provider_ref).first()
        if letter is None:
            ignored += 1
            continue
        recorded += lifecycle.record_provider_events(letter, [event])
    return JsonResponse({"recorded": recorded, "ignored": ignored})
