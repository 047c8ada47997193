"""Forms of the chatter panel: the composer, the attachment upload and the follower picker."""

from __future__ import annotations

from django import forms

from mailroom.chatter.models import Message


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Zero or more files from one `<input type="file" multiple>`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if not data:
            return []
        if not isinstance(data, (list, tuple)):
            data = [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in data]


class ComposerForm(forms.Form):
    """"Send message" (a comment that notifies followers) or "Log note" (internal)."""

    KINDS = {"message": Message.Type.COMMENT, "note": Message.Type.NOTE}

    kind = forms.ChoiceField(choices=[("message", "Message"), ("note", "Note")],
                             initial="message")
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    files = MultipleFileField()

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("body") and not cleaned.get("files") and not self.errors:
            raise forms.ValidationError("Write something or attach a file before posting.")
        return cleaned

    @property
    def message_type(self) -> str:
        return self.KINDS[self.cleaned_data["kind"]]


class UploadForm(forms.Form):
    files = MultipleFileField()

    def clean_files(self):
        files = self.cleaned_data["files"]
        if not files:
            raise forms.ValidationError("Choose a file to upload.")
        return files


class FollowForm(forms.Form):
    partner = forms.IntegerField(min_value=1)
