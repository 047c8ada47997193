"""GET /documents/<record type>/<pk>.pdf: a quotation or invoice as a PDF.

Signed-in office users only; the record is loaded through the user's company-scoped queryset,
so another company's record answers 404 exactly like a missing one. Failures answer a short
plain-text message (the URL opens in a browser tab, where an HTML error page is just noise).
"""

from __future__ import annotations

import logging

from django.apps import apps
from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from mailroom.core.decorators import office_user_required
from mailroom.documents.registry import spec_for_label

log = logging.getLogger(__name__)


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


@require_GET
@office_user_required
def document_pdf(request: HttpRequest, record_type: str, pk: int) -> HttpResponse:
    if spec_for_label(record_type) is None:
        return _plain(404, f"There is no printable document for {record_type[:60]!r}.")
    model = apps.get_model(record_type)
    record = (model.objects.for_user(request.user)
              .select_related("company", "partner")
              .filter(pk=pk).first())
    if record is None:
        return _plain(404, f"No {model._meta.verbose_name} {pk} that you can see.")
    from mailroom.documents import pdf  # WeasyPrint loads on the first PDF, not at start-up

    try:
        document = pdf.render_pdf(record)
    except Exception:
        log.exception("Rendering %s %s to PDF failed", record_type, pk)
        return _plain(500, "The PDF could not be rendered. The error is logged for the "
                           "administrator; please try again later.")
    download = request.GET.get("download") in ("1", "true", "yes")
    response = HttpResponse(document.content, content_type=document.mimetype)
    response["Content-Disposition"] = content_disposition_header(download, document.filename)
    response["Content-Length"] = str(len(document.content))
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
