""""Send by Post" in the back office: the sidebar entries, a list action on every record list
and a change-page button for admins that mix in `SendByPostMixin`.

The button and the action only lead to /letters/send/<content type>/<id>/, whose view checks
who may see the record and send letters; the admin holds no second copy of those rules.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from unfold.decorators import action

from mailroom.chatter.admin_base import register_record_list_action
from mailroom.core import navigation
from mailroom.letters.models import Letter, PostalProvider, PrintBatch
from mailroom.letters.views import MASS_LIMIT
from mailroom.lib.params import parse_id


def send_url(model, object_id: int) -> str:
    content_type = ContentType.objects.get_for_model(model)
    return reverse("letters:send", args=[content_type.pk, object_id])


class SendByPostMixin:
    """For a record admin: add "send_by_post" to its `actions_detail`."""

    @action(description="Send by post", url_path="send-by-post", icon="local_post_office")
    def send_by_post(self, request, object_id):
        record_id = parse_id(str(object_id))
        if record_id is None:
            raise Http404("No such record.")
        return redirect(send_url(self.model, record_id))


def send_by_post_action(modeladmin, request, queryset):
    """One record: its Send by Post page. Several: the page that sends one letter each."""

    ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:MASS_LIMIT + 1])
    if len(ids) == 1:
        return redirect(send_url(queryset.model, ids[0]))
    if len(ids) > MASS_LIMIT:
        messages.warning(request, f"Select at most {MASS_LIMIT} records to send by post.")
        return None
    content_type = ContentType.objects.get_for_model(queryset.model)
    return redirect(f"{reverse('letters:send_many', args=[content_type.pk])}"
                    f"?ids={','.join(map(str, ids))}")


def register() -> None:
    """Called from LettersConfig.ready(); idempotent."""

    if not any(e.url_name == "admin:letters_letter_changelist" for e in navigation.ENTRIES):
        navigation.add_model("Email", "Letters", "local_post_office", Letter)
        navigation.add_model("Email", "Print batches", "print", PrintBatch)
        navigation.add_model("Email", "Postal providers", "markunread_mailbox", PostalProvider)
    register_record_list_action("send_by_post", send_by_post_action, "Send by post…")
