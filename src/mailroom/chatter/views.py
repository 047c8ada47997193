"""The chatter panel beside every record form: timeline, composer, attachments, followers.

Plain function views answering htmx with HTML partials. Every view loads the record with
`get_record_for_user` (404 for other companies' rows, never 403, so their existence does not
leak) and writes only through the chatter services. Invalid input answers 422 with the form
partial carrying a red line; `chatter.js` tells htmx to swap 422 like 200.
"""

from __future__ import annotations

import base64
import logging
import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from mailroom.chatter import services
from mailroom.chatter.forms import ComposerForm, FollowForm, UploadForm
from mailroom.chatter.models import Attachment, Follower, MailThread, Message
from mailroom.core import blobs
from mailroom.core.decorators import office_user_required
from mailroom.lib.html import sanitize_html
from mailroom.lib.params import parse_id

log = logging.getLogger(__name__)

PAGE_SIZE = 30
PARTNER_CHOICES = 8
# Served as bytes, never rendered: types a browser would run or render get a neutral type.
ACTIVE_TYPES = {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml",
                "application/xml", "application/javascript", "text/javascript"}
# An email body in the chatter's sandboxed iframe: inline styles, our own and embedded images;
# nothing remote (tracking pixels) until the user asks, nothing that runs, ever.
BODY_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src {images}; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
LOCAL_IMAGES = "'self' data:"
# Inline (cid:) images embedded into the body as data: URIs: the sandboxed frame has an opaque
# origin, so the browser sends it no session cookie and our download URL would answer 302.
INLINE_IMAGE_MAX_BYTES = 2 * 1024 * 1024
INLINE_IMAGES_MAX_BYTES = 10 * 1024 * 1024
_SAFE_IMAGE_TYPE = re.compile(r"image/[a-z0-9.+-]{1,60}")


def _record(request, content_type_id: int, object_id: int) -> MailThread:
    return services.get_record_for_user(content_type_id, object_id, request.user)


def _urls(content_type_id: int, object_id: int) -> dict[str, str]:
    args = [content_type_id, object_id]
    return {name: reverse(f"chatter:{name}", args=args)
            for name in ("panel", "timeline", "post", "upload", "follow", "unfollow",
                         "partners")}


def _messages(record: MailThread, before: Message | None = None) -> tuple[list[Message], bool]:
    """One page of the timeline, newest first, and whether older messages remain."""
    qs = (services.thread_queryset(Message, record)
          .select_related("author_user", "author_partner")
          .prefetch_related("tracking", "attachments", "notifications__partner")
          .order_by("-date", "-id"))
    if before is not None:
        qs = qs.filter(Q(date__lt=before.date) | Q(date=before.date, id__lt=before.id))
    page = list(qs[:PAGE_SIZE + 1])
    return page[:PAGE_SIZE], len(page) > PAGE_SIZE


def _attachments(record: MailThread) -> list[Attachment]:
    return list(services.thread_queryset(Attachment, record).select_related("uploaded_by"))


def _followers(record: MailThread) -> list[Follower]:
    return list(services.thread_queryset(Follower, record).select_related("partner")
                .order_by("partner__name"))


def _context(record: MailThread, content_type_id: int, **extra) -> dict:
    followers = extra.pop("followers", None)
    if followers is None:
        followers = _followers(record)
    return {
        "record": record,
        "urls": _urls(content_type_id, record.pk),
        "followers": followers,
        **extra,
    }


def _error_lines(exc: ValidationError) -> list[str]:
    return list(exc.messages)


@office_user_required
@require_GET
def panel(request, content_type_id: int, object_id: int):
    """The whole panel, loaded once by the record page (hx-trigger="load")."""
    record = _record(request, content_type_id, object_id)
    messages, has_more = _messages(record)
    return render(request, "chatter/panel.html", _context(
        record, content_type_id, messages=messages, has_more=has_more,
        attachments=_attachments(record), form=ComposerForm(), upload_form=UploadForm(),
    ))


@office_user_required
@require_GET
def timeline(request, content_type_id: int, object_id: int):
    """Older messages: the page before message `?before=<id>`."""
    record = _record(request, content_type_id, object_id)
    before = None
    before_id = parse_id(request.GET.get("before", ""))
    if before_id is not None:
        before = services.thread_queryset(Message, record).filter(pk=before_id).first()
    if before is None:  # an unknown cursor must not repeat the first page
        messages, has_more = [], False
    else:
        messages, has_more = _messages(record, before)
    return render(request, "chatter/partials/timeline_page.html", _context(
        record, content_type_id, messages=messages, has_more=has_more))


@office_user_required
@require_POST
def post(request, content_type_id: int, object_id: int):
    """Send a message or log a note, with files. Answers the fresh composer plus the new entry
    prepended to the timeline (out of band) and, when files came along, the attachment list."""
    record = _record(request, content_type_id, object_id)
    form = ComposerForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            stored = [
                services.store_attachment(record, actor=request.user, name=upload.name,
                                          stream=upload)
                for upload in form.cleaned_data["files"]
            ]
            message = services.post_message(
                record, actor=request.user, body_text=form.cleaned_data["body"],
                message_type=form.message_type, attachments=stored,
            )
        except ValidationError as exc:
            for line in _error_lines(exc):
                form.add_error(None, line)
        else:
            message = (services.thread_queryset(Message, record)
                       .prefetch_related("tracking", "attachments", "notifications__partner")
                       .get(pk=message.pk))
            response = render(request, "chatter/partials/posted.html", _context(
                record, content_type_id, form=ComposerForm(), message=message,
                attachments=_attachments(record) if stored else None,
            ))
            response["HX-Trigger"] = "chatter-posted"
            return response
    return render(request, "chatter/partials/composer.html",
                  _context(record, content_type_id, form=form), status=422)


@office_user_required
@require_POST
def upload(request, content_type_id: int, object_id: int):
    """Add files to the record's attachments (no message in the timeline)."""
    record = _record(request, content_type_id, object_id)
    form = UploadForm(request.POST, request.FILES)
    errors: list[str] = []
    if form.is_valid():
        for item in form.cleaned_data["files"]:
            try:
                services.store_attachment(record, actor=request.user, name=item.name,
                                          stream=item)
            except ValidationError as exc:
                errors += [f"{item.name}: {line}" for line in _error_lines(exc)]
    else:
        errors = [e for field_errors in form.errors.values() for e in field_errors]
    return render(request, "chatter/partials/attachments.html", _context(
        record, content_type_id, attachments=_attachments(record), upload_errors=errors,
    ), status=422 if errors else 200)


@office_user_required
@require_GET
def partners(request, content_type_id: int, object_id: int):
    """Contacts of the record's company who could follow it, matching `?q=`."""
    record = _record(request, content_type_id, object_id)
    query = request.GET.get("q", "").strip()[:100]
    following = services.thread_queryset(Follower, record).values("partner_id")
    candidates = (_partners().for_user(request.user)
                  .filter(company_id=record.company_id, active=True)
                  .exclude(pk__in=following).order_by("name"))
    if query:
        candidates = candidates.filter(Q(name__icontains=query) | Q(email__icontains=query))
    return render(request, "chatter/partials/partner_choices.html", _context(
        record, content_type_id, candidates=list(candidates[:PARTNER_CHOICES]), query=query))


def _partners():
    """The contacts model, as followers point at it: contacts builds on chatter (a contact
    has a chatter), so chatter reaches it through its own foreign key, not an import."""
    return Follower._meta.get_field("partner").related_model.objects


def _partner_for(request) -> tuple[models.Model | None, list[str]]:
    form = FollowForm(request.POST)
    if not form.is_valid():
        return None, ["Choose a contact."]
    partner = _partners().for_user(request.user).filter(
        pk=form.cleaned_data["partner"]).first()
    if partner is None:
        return None, ["That contact does not exist."]
    return partner, []


@office_user_required
@require_POST
def follow(request, content_type_id: int, object_id: int):
    record = _record(request, content_type_id, object_id)
    partner, errors = _partner_for(request)
    if partner is not None:
        try:
            services.follow(record, partner, actor=request.user)
        except ValidationError as exc:
            errors = _error_lines(exc)
    return render(request, "chatter/partials/followers.html",
                  _context(record, content_type_id, follower_errors=errors),
                  status=422 if errors else 200)


@office_user_required
@require_POST
def unfollow(request, content_type_id: int, object_id: int):
    record = _record(request, content_type_id, object_id)
    partner, errors = _partner_for(request)
    if partner is not None:
        services.unfollow(record, partner, actor=request.user)
    return render(request, "chatter/partials/followers.html",
                  _context(record, content_type_id, follower_errors=errors),
                  status=422 if errors else 200)


@office_user_required
@require_GET
def download(request, attachment_id: int):
    """The file, as a download, to users who can see its record; 404 for everyone else."""
    attachment = Attachment.objects.for_user(request.user).filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404("No such attachment.")
    services.get_record_for_user(attachment.content_type_id, attachment.object_id, request.user)
    try:
        handle = blobs.open_blob(attachment.sha256)
    except blobs.BlobMissing as exc:
        log.error("attachment %s: %s", attachment.pk, exc)
        raise Http404("The file is missing from storage.") from None
    except blobs.BlobError as exc:
        log.error("attachment %s: %s", attachment.pk, exc)
        return HttpResponse("The file store cannot be reached just now; try again in a "
                            "minute.", status=503, content_type="text/plain; charset=utf-8")
    mimetype = attachment.mimetype.split(";")[0].strip().lower()
    if mimetype in ACTIVE_TYPES or not mimetype or attachment.is_dangerous:
        mimetype = "application/octet-stream"
    # `?inline=1` (the router's rewrite of cid: images) shows a harmless image in place;
    # everything else, and anything flagged dangerous, is only ever a download
    inline = request.GET.get("inline") == "1" and mimetype.startswith("image/")
    response = FileResponse(handle, as_attachment=not inline, filename=attachment.name,
                            content_type=mimetype)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-cache"
    return response


@office_user_required
@require_GET
def message_body(request, message_id: int):
    """A message's HTML for the chatter's `<iframe sandbox="">`, under a CSP that loads no
    remote image unless `?images=1` (the "Show remote images" button) and runs nothing."""
    message = Message.objects.for_user(request.user).filter(pk=message_id).first()
    if message is None:
        raise Http404("No such message.")
    services.get_record_for_user(message.content_type_id, message.object_id, request.user)
    images = LOCAL_IMAGES
    if request.GET.get("images") == "1":
        # http: too on a plain-http site; on https the browser would block or upgrade it
        images += " https:" if request.is_secure() else " https: http:"
    body = _embed_inline_images(sanitize_html(message.body_html), message)
    response = render(request, "chatter/email_body.html", {
        "message": message, "body": mark_safe(body)})  # noqa: S308 - nh3 output + data: URIs
    response["Content-Security-Policy"] = BODY_CSP.format(images=images)
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _inline_image_pattern() -> re.Pattern:
    before, _, after = reverse("chatter:download", args=[0]).partition("0")
    return re.compile(rf"""(["']){re.escape(before)}(\d+){re.escape(after)}\?inline=1\1""")


def _embed_inline_images(html: str, message: Message) -> str:
    """The record's own safe images, referenced as `…/download/?inline=1` by the router's
    cid: rewrite, become data: URIs (at most 2 MB each and 10 MB per body)."""
    pattern = _inline_image_pattern()
    wanted = {int(m.group(2)) for m in pattern.finditer(html)}
    if not wanted:
        return html
    found = Attachment.objects.filter(pk__in=wanted, content_type_id=message.content_type_id,
                                      object_id=message.object_id, is_dangerous=False,
                                      size__lte=INLINE_IMAGE_MAX_BYTES)
    embedded: dict[int, str] = {}
    budget = INLINE_IMAGES_MAX_BYTES
    for attachment in found:
        mimetype = attachment.mimetype.split(";")[0].strip().lower()
        if not _SAFE_IMAGE_TYPE.fullmatch(mimetype) or mimetype in ACTIVE_TYPES:
            continue
        if attachment.size > budget:
            continue
        try:
            data = blobs.read_blob(attachment.sha256)
        except blobs.BlobError:
            continue
        budget -= len(data)
        embedded[attachment.pk] = f"data:{mimetype};base64,{base64.b64encode(data).decode()}"

    def swap(match: re.Match) -> str:
        uri = embedded.get(int(match.group(2)))
        return f"{match.group(1)}{uri}{match.group(1)}" if uri else match.group(0)

    return pattern.sub(swap, html)
