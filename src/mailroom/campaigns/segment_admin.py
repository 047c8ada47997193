"""Email › Segments: the list (name, match, a count fetched lazily per row, the campaigns
that use it); adding and changing open the segment editor (/campaigns/segments/…), where
conditions are rows of selects with a live count. Deleting goes through
`segments.delete_segment`, which refuses while a draft or scheduled campaign sends to it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.decorators import display

from mailroom.campaigns import segments
from mailroom.campaigns.campaign_models import Segment
from mailroom.core.access import allowed
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.lib.params import parse_id


@admin.register(Segment)
class SegmentAdmin(CompanyScopedAdmin):
    list_display = ["name", "match", "conditions", "live_count", "used_by", "updated_at"]
    list_filter = ["match"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "match"]

    @display(description="Conditions")
    def conditions(self, obj: Segment):
        return len(obj.rules) if isinstance(obj.rules, list) else 0

    @display(description="Contacts now")
    def live_count(self, obj: Segment):
        # fetched once the page shows, so a long list of segments never slows the page
        return format_html('<span class="mr-seg-lazy" hx-get="{}?segment={}" hx-trigger="load" '
                           'hx-swap="innerHTML" style="color:#6b7280">…</span>',
                           reverse("campaigns:segment_count"), obj.pk)

    @display(description="Campaigns")
    def used_by(self, obj: Segment):
        names = [c.name for c in obj.campaigns.all()[:3]]
        return ", ".join(names) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("campaigns")

    def add_view(self, request, form_url="", extra_context=None):
        return redirect(reverse("campaigns:segment_new"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        pk = parse_id(str(object_id))
        found = self.get_queryset(request).filter(pk=pk).first() if pk else None
        if found is None:
            raise Http404("No such segment.")
        return redirect(reverse("campaigns:segment_edit", args=[found.pk]))

    def has_delete_permission(self, request, obj=None):
        # a Mail Manager's job, like the lists: `delete_segment` refuses while one is in use
        return allowed(request.user, "campaigns.delete_segment")

    def delete_view(self, request, object_id, extra_context=None):
        try:
            with transaction.atomic():
                return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(reverse("admin:campaigns_segment_changelist"))

    def delete_model(self, request, obj):
        segments.delete_segment(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for segment in queryset:
            try:
                segments.delete_segment(segment, actor=request.user)
            except ValidationError as exc:
                messages.error(request, f"{segment.name}: {' '.join(exc.messages)}")
