from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "mailroom.documents"
    label = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        # Imported here, not at module level: the registrations name sales and invoicing
        # models, which must be loaded first.
        from mailroom.documents.builtin import register_builtin_documents

        register_builtin_documents()
