from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "mailroom.documents"
    label = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        # ready() only, as documents/builtin.py promises (it names the sales and invoicing models)
        from mailroom.documents.builtin import register_builtin_documents

        register_builtin_documents()
