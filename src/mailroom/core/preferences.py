"""My preferences: every office user's own name, language, time zone and how Mailroom tells
them about messages, mentions and activities (by email, or in the Mailroom inbox only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from unfold.widgets import (
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from mailroom.core import services
from mailroom.core.decorators import office_user_required
from mailroom.core.models import User


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = User
        fields = services.PREFERENCE_FIELDS
        widgets = {
            "first_name": UnfoldAdminTextInputWidget,
            "last_name": UnfoldAdminTextInputWidget,
            "language": UnfoldAdminSelectWidget,
            "timezone": UnfoldAdminSelectWidget,
            "notify_by": UnfoldAdminRadioSelectWidget,
        }


@office_user_required
def preferences(request):
    user = request.user
    form = PreferencesForm(request.POST or None, instance=User.objects.get(pk=user.pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.save_preferences(user, actor=user, **{
                name: form.cleaned_data[name] for name in services.PREFERENCE_FIELDS})
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Your preferences are saved.")
            return HttpResponseRedirect(reverse("core:preferences"))
    context = {**admin.site.each_context(request), "title": "My preferences", "form": form}
    return render(request, "core/preferences.html", context, status=422 if form.errors else 200)
