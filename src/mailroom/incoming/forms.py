"""Forms of the incoming screens. Server secrets are write-only: never rendered, blank keeps."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import (
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from mailroom.core import record_types
from mailroom.core.secret_forms import WriteOnlySecrets, secret_field
from mailroom.incoming.models import IncomingServer
from mailroom.incoming.services import validate_server


def _fallback_choices() -> list[tuple[str, str]]:
    types = sorted(((t.key, t.label) for t in record_types.all_types()), key=lambda c: c[1])
    return [("", "None: refuse mail that matches nothing"), *types]


class IncomingServerForm(WriteOnlySecrets, forms.ModelForm):
    secret_fields = {"password": "password", "oauth_client_secret": "client secret",
                     "oauth_refresh_token": "refresh token"}

    password = secret_field("Password")
    oauth_client_secret = secret_field("OAuth client secret")
    oauth_refresh_token = secret_field("OAuth refresh token")
    fallback_record_type = forms.ChoiceField(
        label="Fallback record type", required=False, choices=_fallback_choices,
        widget=UnfoldAdminSelectWidget,
        help_text="Mail that matches no alias and no thread creates a record of this type.")
    forget_secrets = forms.BooleanField(
        label="Erase stored secrets", required=False, widget=UnfoldBooleanSwitchWidget,
        help_text="Removes the stored password and OAuth secrets and tokens.")

    class Meta:
        model = IncomingServer
        exclude = ("oauth_access_token", "oauth_token_expires_at", "status", "last_fetch_at",
                   "last_fetch_count", "last_error", "consecutive_failures",
                   "failure_notified", "next_fetch_at", "lease_owner", "lease_expires_at",
                   *IncomingServer.SECRET_FIELDS)
        labels = {"oauth_provider": "OAuth provider", "oauth_client_id": "OAuth client ID"}
        widgets = {"host": UnfoldAdminTextInputWidget(attrs={"placeholder": "imap.acme.com"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.describe_secrets()

    def _post_clean(self):
        super()._post_clean()
        if "oauth_refresh_token" in self.take_secrets(IncomingServer.SECRET_FIELDS):
            # a new grant: the old access token goes
            self.instance.oauth_access_token = ""
            self.instance.oauth_token_expires_at = None
        if not self.errors:
            try:
                validate_server(self.instance)
            except ValidationError as exc:
                self._update_errors(exc)


class TestAddressForm(forms.Form):
    sender = forms.EmailField(
        label="From", widget=UnfoldAdminTextInputWidget(
            attrs={"placeholder": "anna@customer.example", "autocomplete": "off"}))
    recipient = forms.CharField(
        label="To", max_length=320, widget=UnfoldAdminTextInputWidget(
            attrs={"placeholder": "support@acme.com", "autocomplete": "off"}),
        help_text="One of your addresses: an alias, a reply address, the bounce address…")
    subject = forms.CharField(required=False, max_length=300,
                              widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "Test"}))
    headers = forms.CharField(
        label="Extra headers", required=False, widget=UnfoldAdminTextareaWidget(
            attrs={"rows": 3, "spellcheck": "false",
                   "placeholder": "Auto-Submitted: auto-replied\nIn-Reply-To: <id@host>"}),
        help_text="One “Name: value” per line.")

    def clean_recipient(self) -> str:
        value = self.cleaned_data["recipient"].strip().strip("<>")
        if "@" not in value or any(c.isspace() for c in value):
            raise ValidationError("Enter an address such as support@acme.com.")
        return value

    def clean_headers(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["headers"].splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            name = name.strip()
            if not colon or not name or any(c.isspace() or ord(c) < 33 or ord(c) > 126
                                             for c in name):
                raise ValidationError(f"Line {number} is not “Name: value”.")
            found[name] = value.strip().replace("\r", " ").replace("\n", " ")
        if len(found) > 30:
            raise ValidationError("At most 30 headers.")
        return found
