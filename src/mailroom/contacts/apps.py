from django.apps import AppConfig

from mailroom.core.record_types import RecordType, register


class ContactsConfig(AppConfig):
    name = "mailroom.contacts"
    label = "contacts"
    verbose_name = "Contacts"

    def ready(self) -> None:
        # ready(): models cannot load before the app registry
        from mailroom.chatter.notifiers import register_user_partner
        from mailroom.contacts.models import Partner
        from mailroom.contacts.services import partner_for_user

        register_user_partner(partner_for_user)
        register(RecordType(
            key="contacts.partner", label="Contact", label_plural="Contacts", model=Partner,
            default_alias="", template_fields=(
                "name", "email", "phone", "kind", "street", "street2", "city", "zip", "state",
                "country", "language", "parent.name",
            ),
            api_fields=("name", "kind", "email", "phone", "language", "timezone", "street",
                        "street2", "city", "state", "zip", "country", "parent_id"),
        ))
