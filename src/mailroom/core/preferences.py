"""My preferences: every office user's own name, language, time zone and how Mailroom tells
them about messages, mentions and activities (by email, or in the Mailroom inbox only).

Upper floors add sections of their own ("My digests") with `register_preference_section`:
a template rendered below the form with what `context(request)` returns (None hides the
section), and `save(request)` called when a form of the section posts `section=<key>` to this
page. `save` returns the message to show; PermissionDenied or ValidationError become an
error message. Core knows no section by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
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


@dataclass(frozen=True)
class PreferenceSection:
    key: str
    template: str
    context: Callable  # (request) -> dict | None
    save: Callable | None = None  # (request) -> str | None, the success message
    position: int = 100


SECTIONS: dict[str, PreferenceSection] = {}


def register_preference_section(key: str, template: str, context: Callable,
                                save: Callable | None = None, position: int = 100) -> None:
    SECTIONS[key] = PreferenceSection(key, template, context, save, position)


def _sections(request) -> list[dict]:
    shown = []
    for section in sorted(SECTIONS.values(), key=lambda s: (s.position, s.key)):
        data = section.context(request)
        if data is not None:
            shown.append({"key": section.key, "template": section.template, "data": data})
    return shown


def _save_section(request, section: PreferenceSection):
    try:
        done = section.save(request) if section.save else None
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
    else:
        if done:
            messages.success(request, done)
    return HttpResponseRedirect(reverse("core:preferences") + f"#pref-section-{section.key}")


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
    section = SECTIONS.get(request.POST.get("section", "")) if request.method == "POST" else None
    if section is not None:
        return _save_section(request, section)
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
    context = {**admin.site.each_context(request), "title": "My preferences", "form": form,
               "sections": _sections(request)}
    return render(request, "core/preferences.html", context, status=422 if form.errors else 200)
