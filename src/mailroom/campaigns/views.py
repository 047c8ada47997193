"""/campaigns/…: the contact-import wizard (upload → map columns and preview → progress and
results), the bad rows as CSV and a list's export.

Every page looks its row up among the viewer's companies: another company's list or import
is a 404, exactly like a missing one. Writes go through `campaigns.services`; a refused
upload or mapping is a red line on the same page, never a 500.
"""

from __future__ import annotations

import csv

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailroom.campaigns import imports, services
from mailroom.campaigns.models import ImportBadRow, ImportJob, MailingList, Subscription
from mailroom.core.access import allowed
from mailroom.core.blobs import BlobError, BlobMissing, read_blob
from mailroom.core.decorators import office_user_required

IMPORT_PERM = "campaigns.add_importjob"
EXPORT_PERM = "campaigns.change_subscription"
BAD_ROWS_SHOWN = 100
SNIFF_ROWS = 50


def _list(request, list_id: int) -> MailingList:
    found = MailingList.objects.for_user(request.user).filter(pk=list_id).first()
    if found is None:
        raise Http404("No such mailing list.")
    return found


def _job(request, job_id: int) -> ImportJob:
    if not allowed(request.user, "campaigns.view_importjob"):
        raise Http404("No such import.")
    job = (ImportJob.objects.for_user(request.user).select_related("mailing_list")
           .filter(pk=job_id).first())
    if job is None:
        raise Http404("No such import.")
    return job


def _require(request, perm: str, what: str) -> None:
    if not allowed(request.user, perm):
        raise PermissionDenied(f"Your roles do not allow you to {what}.")


def _messages(exc: ValidationError) -> list[str]:
    return list(exc.messages)


def _page(request, template: str, **context):
    return render(request, template, {**admin.site.each_context(request), **context})


def _list_url(mailing_list: MailingList) -> str:
    return reverse("admin:campaigns_mailinglist_change", args=[mailing_list.pk])


def _read_upload(upload) -> bytes:
    limit = settings.MAX_ATTACHMENT_BYTES
    content = upload.read(limit + 1)
    if len(content) > limit:
        raise ValidationError(f"The file is larger than {limit // (1024 * 1024)} MB; split it "
                              "into smaller files.")
    if not content.strip():
        raise ValidationError("The file is empty.")
    return content


def _sniff(content: bytes, fmt: str) -> tuple[list[str], int, bool]:
    """The first row, the widest row among the first few, and whether row 1 is a header."""
    head: list[list[str]] = []
    for row in imports.read_rows(content, fmt):
        if any(row):
            head.append(row)
        if len(head) >= SNIFF_ROWS:
            break
    if not head:
        raise imports.ImportFileError("The file has no rows.")
    width = max(len(row) for row in head)
    return head[0], width, imports.detect_header(head[0])


@require_http_methods(["GET", "POST"])
@office_user_required
def import_upload(request, list_id: int):
    """Step 1: the file and how these people consented."""
    mailing_list = _list(request, list_id)
    _require(request, IMPORT_PERM, "import contacts")
    errors: list[str] = []
    consent_how = ""
    if request.method == "POST":
        consent_how = request.POST.get("consent_how", "")[:500]
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationError("Choose a CSV or Excel (.xlsx) file.")
            fmt = imports.file_format(upload.name)
            content = _read_upload(upload)
            first, width, has_header = _sniff(content, fmt)
            total = sum(1 for _ in imports.data_rows(content, fmt, has_header))
            job = services.create_import(
                mailing_list, actor=request.user, filename=upload.name, content=content,
                file_format=fmt, consent_how=consent_how, has_header=has_header, total=total,
                mapping=imports.guess_mapping(first, has_header))
        except imports.ImportFileError as exc:
            errors.append(str(exc))
        except ValidationError as exc:
            errors.extend(_messages(exc))
        else:
            return redirect("campaigns:import_map", job_id=job.pk)
    return _page(request, "campaigns/import_upload.html", title=f"Import contacts into "
                 f"{mailing_list}", mailing_list=mailing_list, errors=errors,
                 consent_how=consent_how, back=_list_url(mailing_list),
                 max_mb=settings.MAX_ATTACHMENT_BYTES // (1024 * 1024))


def _job_content(job: ImportJob) -> bytes:
    try:
        return read_blob(job.file_sha256)
    except BlobMissing:
        raise ValidationError("The uploaded file is missing from the file store; upload it "
                              "again.") from None
    except BlobError:
        raise ValidationError("The file store cannot be reached just now; try again in a "
                              "minute.") from None


@require_http_methods(["GET", "POST"])
@office_user_required
def import_map(request, job_id: int):
    """Step 2: which column is which (guessed), a preview of the first rows and the counts of
    good and bad rows. "Import" queues the job."""
    job = _job(request, job_id)
    _require(request, IMPORT_PERM, "import contacts")
    if job.state != ImportJob.State.DRAFT:
        return redirect("campaigns:import_job", job_id=job.pk)
    errors: list[str] = []
    mapping, has_header = dict(job.mapping), job.has_header
    preview = None
    columns: list[tuple[int, str]] = []
    try:
        content = _job_content(job)
        first, width, _ = _sniff(content, job.file_format)
        if request.method == "POST":
            has_header = request.POST.get("has_header") == "on"
            mapping = imports.clean_mapping(
                {name: request.POST.get(f"map_{name}", "") for name in imports.FIELDS}, width)
        columns = list(enumerate(imports.column_labels(first, has_header, width)))
        if "email" not in mapping:
            errors.append("Choose the column that holds the email address.")
        else:
            preview = imports.preview(content, job.file_format, has_header, mapping,
                                      job.mailing_list)
        if request.method == "POST" and request.POST.get("action") == "import" and not errors:
            if not preview.good:
                errors.append("No row can be imported: every row has a problem (see below).")
            else:
                services.start_import(job, actor=request.user, mapping=mapping,
                                      has_header=has_header, total=preview.total)
                return redirect("campaigns:import_job", job_id=job.pk)
    except imports.ImportFileError as exc:
        errors.append(str(exc))
    except ValidationError as exc:
        errors.extend(_messages(exc))
    reasons = dict(ImportBadRow.Reason.choices)
    return _page(request, "campaigns/import_map.html", title=f"Import {job.filename}",
                 job=job, errors=errors, mapping=mapping, has_header=has_header,
                 columns=columns, preview=preview,
                 fields=[(name, imports.FIELD_LABELS[name], mapping.get(name))
                         for name in imports.FIELDS],
                 reasons=[(reasons[key], count) for key, count in
                          (preview.by_reason.items() if preview else [])],
                 back=_list_url(job.mailing_list))


def _progress_context(request, job: ImportJob) -> dict:
    return {"job": job, "bad_rows": list(job.bad_rows.all()[:BAD_ROWS_SHOWN]),
            "may_retry": allowed(request.user, IMPORT_PERM),
            "may_download": allowed(request.user, EXPORT_PERM)}


@require_GET
@office_user_required
def import_job(request, job_id: int):
    """Step 3: the progress bar (polled while the worker imports), then the results."""
    job = _job(request, job_id)
    if job.state == ImportJob.State.DRAFT:
        return redirect("campaigns:import_map", job_id=job.pk)
    return _page(request, "campaigns/import_job.html", title=str(job),
                 back=_list_url(job.mailing_list), **_progress_context(request, job))


@require_GET
@office_user_required
def import_progress(request, job_id: int):
    job = _job(request, job_id)
    return render(request, "campaigns/partials/import_progress.html",
                  _progress_context(request, job))


@require_POST
@office_user_required
def import_retry(request, job_id: int):
    job = _job(request, job_id)
    _require(request, IMPORT_PERM, "import contacts")
    try:
        services.retry_import(job, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(_messages(exc)))
    else:
        messages.success(request, f"The import continues after row {job.done}.")
    return redirect("campaigns:import_job", job_id=job.pk)


class _Echo:
    def write(self, value):
        return value


def _csv_response(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # Excel opens UTF-8 CSV files with a BOM correctly
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_safe_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _safe_cell(value) -> str:
    """No spreadsheet formulas from data people typed (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


@require_GET
@office_user_required
def bad_rows_csv(request, job_id: int):
    """The refused rows, their reasons and the file's own cells, to fix and import again."""
    job = _job(request, job_id)
    _require(request, EXPORT_PERM, "download contact data")
    reasons = dict(ImportBadRow.Reason.choices)

    def rows():
        for bad in job.bad_rows.order_by("row").iterator(chunk_size=2000):
            yield [bad.row, bad.email, reasons.get(bad.reason, bad.reason), bad.message,
                   *bad.values]

    name = f"{job.filename.rsplit('.', 1)[0]} – bad rows.csv"
    return _csv_response(name, ["line", "email", "reason", "details", "original row…"],
                         rows())


@require_GET
@office_user_required
def export_csv(request, list_id: int):
    """Everyone on the list with status, source and consent evidence."""
    mailing_list = _list(request, list_id)
    _require(request, EXPORT_PERM, "export subscriptions")
    status = request.GET.get("status", "")
    subscriptions = (Subscription.objects.filter(mailing_list=mailing_list)
                     .select_related("partner").order_by("email", "id"))
    if status in Subscription.Status.values:
        subscriptions = subscriptions.filter(status=status)

    def rows():
        for sub in subscriptions.iterator(chunk_size=2000):
            yield [sub.email, sub.partner.name, sub.status, sub.source,
                   sub.consent_at.isoformat() if sub.consent_at else "", sub.consent_how,
                   sub.consent_ip or "",
                   sub.unsubscribed_at.isoformat() if sub.unsubscribed_at else ""]

    stamp = timezone.localdate().isoformat()
    return _csv_response(f"{mailing_list.name} {stamp}.csv",
                         ["email", "name", "status", "source", "consent_at", "consent_how",
                          "consent_ip", "unsubscribed_at"], rows())


