"""Business documents (quotations, invoices) rendered to branded PDFs with WeasyPrint.

Public API: `registry.register_document`, `registry.document_for`, `registry.has_document`,
`pdf.render_pdf` and `links.document_url`. The composer attaches what `render_pdf` returns.
"""
