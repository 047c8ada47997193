from django.urls import path

from mailroom.documents import views

app_name = "documents"

urlpatterns = [
    # "sales.quotation/12.pdf": the model label, as in the records registry
    path("<str:record_type>/<int:pk>.pdf", views.document_pdf, name="pdf"),
]
