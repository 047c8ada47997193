from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "mailroom.documents"
    label = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        # ready(): the registrations name sales and invoicing models, which must load first
        from mailroom.documents.builtin import register_builtin_documents

        register_builtin_documents()
