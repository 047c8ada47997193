""""Preview PDF" and "Download PDF" buttons on the change page of a record with a document.

Mixed into `apps.document_admin.DocumentAdminMixin`, so quotations and invoices get them with
no change to their own admin classes. The buttons only redirect to the PDF URL: the view there
checks who may see the record, so the admin holds no second copy of that rule.
"""

from __future__ import annotations

from django.shortcuts import redirect
from unfold.decorators import action

from mailroom.documents.links import document_url
from mailroom.documents.registry import has_document


class PdfButtonsMixin:
    actions_detail = ["preview_pdf", "download_pdf"]

    def get_actions_detail(self, request, object_id):
        if not has_document(self.model):
            return []
        return super().get_actions_detail(request, object_id)

    @action(description="Preview PDF", url_path="preview-pdf", icon="picture_as_pdf",
            attrs={"target": "_blank", "rel": "noopener"})
    def preview_pdf(self, request, object_id):
        return redirect(document_url(self.model, object_id))

    @action(description="Download PDF", url_path="download-pdf", icon="download")
    def download_pdf(self, request, object_id):
        return redirect(document_url(self.model, object_id, download=True))
