"""Forms of the template editor, the preview, the composer and the mass sender.

The template form validates its sources with the same function the service uses
(`services.validate_sources`), after the model fields are applied, so a refused body shows
as a red line under the field instead of a traceback at save time.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from mailroom.chatter.forms import MultipleFileField
from mailroom.contacts.models import Partner
from mailroom.core import record_types
from mailroom.core.blobs import store_blob
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.lib.addresses import InvalidAddress, sendable_email
from mailroom.lib.params import parse_id
from mailroom.templating import actions, services
from mailroom.templating.models import EmailTemplate, TemplateAttachment, TemplateTranslation


class RichTextarea(forms.Textarea):
    """A textarea that `templating/editor.js` turns into TinyMCE (bundled, GPL-2.0+).

    Not django-tinymce's widget: its JSON config cannot carry the `protect` regexes that keep
    `{% for %}` blocks between table rows intact, so our script initialises the editor."""

    def __init__(self, attrs=None):
        super().__init__({"class": "mr-rich", "rows": 14, **(attrs or {})})


def record_type_choices() -> list[tuple[str, str]]:
    return [("", "—")] + sorted(((t.key, t.label) for t in record_types.all_types()),
                                key=lambda c: c[1])


def _error_dict(exc: ValidationError, fields) -> dict:
    if not hasattr(exc, "error_dict"):
        return {None: exc.messages}
    found: dict = {}
    for key, errors in exc.message_dict.items():
        found.setdefault(key if key in fields else None, []).extend(errors)
    return found


class TemplateForm(forms.ModelForm):
    """The admin's template form; `user` is set by the admin (get_form) per request."""

    user = None

    record_type = forms.ChoiceField(label="Applies to", choices=record_type_choices)
    default_for = forms.ChoiceField(label="Default for", required=False,
                                    choices=actions.choices)

    class Meta:
        model = EmailTemplate
        fields = ["name", "company", "record_type", "description", "text_lang", "subject",
                  "body_html", "email_from", "email_to", "partner_to", "partners", "email_cc",
                  "reply_to", "lang", "scheduled_send", "layout", "server", "attach_document",
                  "auto_delete", "default_for", "active"]
        widgets = {"body_html": RichTextarea(), "description": forms.Textarea({"rows": 2}),
                   "email_to": forms.Textarea({"rows": 1}),
                   "email_cc": forms.Textarea({"rows": 1})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "text_lang" in self.fields:  # the admin's widget keeps its style
            self.fields["text_lang"].choices = [("", "The company's language"),
                                                *LANGUAGE_CHOICES]

    def _post_clean(self):
        super()._post_clean()
        if self.errors or self.user is None:
            return
        editor = services.is_template_editor(self.user)
        if self.instance.company_id is None and not editor:
            self.add_error("company", "Only Template Editors can change templates shared by "
                                      "every company: choose your company.")
            return
        try:
            # translations are checked by their own formset (TranslationFormSet.clean)
            services.validate_sources(self.instance, [], simple_only=not editor)
        except ValidationError as exc:
            for field, errors in _error_dict(exc, self.fields).items():
                for error in errors:
                    self.add_error(field, error)


class TranslationFormSet(forms.BaseInlineFormSet):
    """Checks every translation like the template's own text (simple placeholders only for
    non-editors); errors name the language and the line."""

    user = None

    def clean(self):
        super().clean()
        if any(self.errors) or self.user is None:
            return
        translations = [TemplateTranslation(lang=f.cleaned_data["lang"],
                                            subject=f.cleaned_data.get("subject", ""),
                                            body_html=f.cleaned_data.get("body_html", ""))
                        for f in self.forms
                        if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        seen = [t.lang for t in translations]
        if len(seen) != len(set(seen)):
            raise ValidationError("Each language can have only one translation.")
        probe = EmailTemplate(name=self.instance.name, record_type=self.instance.record_type)
        try:
            services.validate_sources(probe, translations,
                                      simple_only=not services.is_template_editor(self.user))
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class AttachmentUploadForm(forms.ModelForm):
    """A static attachment: the upload goes to the content-addressed store (store_blob)."""

    upload = forms.FileField(required=False, label="File")

    class Meta:
        model = TemplateAttachment
        fields = ["name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        if self.instance.pk is None:
            self.fields["upload"].required = True

    def save(self, commit=True):
        upload = self.cleaned_data.get("upload")
        if upload is not None:
            self.instance.sha256, self.instance.size = store_blob(upload)
            self.instance.mimetype = (upload.content_type or "application/octet-stream")[:255]
            self.instance.name = (self.cleaned_data.get("name") or upload.name)[:255]
        return super().save(commit)


class PreviewForm(forms.Form):
    record = forms.IntegerField(label="Record id", min_value=1)
    lang = forms.ChoiceField(label="Language", required=False,
                             choices=[("", "As the template says")] + list(LANGUAGE_CHOICES))


class AddressListField(forms.Field):
    """Addresses from the composer's chips: one hidden input per chip (name repeated), or a
    comma-separated string (the API and old forms). Each is checked as the outbox checks it,
    and a refused one is named in the error."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        values = value if isinstance(value, (list, tuple)) else [value or ""]
        found: list[str] = []
        for raw in values:
            found += [a.strip() for a in str(raw).replace(";", ",").split(",") if a.strip()]
        return found

    def validate(self, value):
        super().validate(value)
        bad = []
        for address in value:
            try:
                sendable_email(address)
            except InvalidAddress:
                bad.append(address)
        if bad:
            raise ValidationError(
                "Not a valid email address: %(bad)s.", params={"bad": ", ".join(bad)},
                code="invalid")


class ComposerForm(forms.Form):
    """The composer: a template's rendering, edited by the user before sending.

    Recipients are chips (`partners`: contacts of the record's company; `to`/`cc`: typed
    addresses), each carried by its own hidden input; compose_fields.html draws them."""

    # idempotency: one mail per form ("compose:<key>" must fit the outbox's 200 characters)
    key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    template = forms.ModelChoiceField(queryset=EmailTemplate.objects.none(), required=False,
                                      empty_label="No template")
    partners = forms.ModelMultipleChoiceField(queryset=Partner.objects.none(), required=False,
                                              label="To", widget=forms.MultipleHiddenInput)
    to = AddressListField(required=False, label="To")
    cc = AddressListField(required=False, label="Cc")
    subject = forms.CharField(max_length=998, required=False)
    body = forms.CharField(required=False, widget=RichTextarea())
    lang = forms.ChoiceField(label="Language", choices=LANGUAGE_CHOICES, required=False)
    attach_document = forms.BooleanField(required=False, label="Attach the PDF")
    files = MultipleFileField(label="Attachments")
    when = forms.ChoiceField(choices=[("now", "Send now"), ("later", "Schedule")],
                             initial="now", widget=forms.RadioSelect)
    scheduled_at = forms.DateTimeField(required=False, label="Send at",
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                  format="%Y-%m-%dT%H:%M"),
                                       input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])

    def __init__(self, *args, record, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates
        self.fields["partners"].queryset = Partner.objects.filter(
            company_id=record.company_id, active=True).order_by("name")

    def addresses(self, name: str) -> list[str]:
        return list(self.cleaned_data.get(name) or [])

    def chips(self, name: str) -> list:
        """What the `name` chips show: Partner rows for `partners`, addresses otherwise;
        from the posted data when bound (a refused form keeps what the user chose)."""
        if self.is_bound:
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else (
                self.data.get(name) or [])
        else:
            values = self.initial.get(name) or []
        if name != "partners":
            return AddressListField().to_python(list(values))
        ids = [i for i in (parse_id(str(v)) for v in values) if i is not None]
        found = {p.pk: p for p in self.fields["partners"].queryset.filter(pk__in=ids)}
        return [found[i] for i in ids if i in found]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("when") == "later":
            moment = cleaned.get("scheduled_at")
            if moment is None:
                self.add_error("scheduled_at", "Choose when to send.")
            elif moment <= timezone.now():
                self.add_error("scheduled_at", "Choose a moment in the future.")
        else:
            cleaned["scheduled_at"] = None
        if not cleaned.get("partners") and not self.addresses("to") and not self.errors:
            self.add_error("partners", "Choose at least one recipient.")
        return cleaned


class MassForm(forms.Form):
    template = forms.ModelChoiceField(queryset=EmailTemplate.objects.none())

    def __init__(self, *args, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates
