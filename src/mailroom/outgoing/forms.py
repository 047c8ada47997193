"""Forms of the outgoing screens. Secrets are write-only: never rendered back, blank keeps."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import (
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from mailroom.core.secret_forms import WriteOnlySecrets, secret_field
from mailroom.outgoing.models import MailServer
from mailroom.outgoing.server_services import check_server


class MailServerForm(WriteOnlySecrets, forms.ModelForm):
    secret_fields = {"password": "password", "oauth_client_secret": "client secret",
                     "oauth_refresh_token": "refresh token", "client_key": "private key",
                     "feedback_secret": "webhook verification key"}
    multiline_secrets = frozenset({"client_key"})

    password = secret_field("Password")
    oauth_client_secret = secret_field("OAuth client secret")
    oauth_refresh_token = secret_field("OAuth refresh token")
    client_key = secret_field("Client private key (PEM)", multiline=True)
    feedback_secret = secret_field("Webhook verification key")
    forget_secrets = forms.BooleanField(
        label="Erase stored secrets", required=False, widget=UnfoldBooleanSwitchWidget,
        help_text="Removes the stored password, OAuth secrets, client key and webhook "
                  "verification key.")

    class Meta:
        model = MailServer
        exclude = ("oauth_access_token", "oauth_token_expires_at", *MailServer.SECRET_FIELDS)
        labels = {"oauth_provider": "OAuth provider", "oauth_client_id": "OAuth client ID",
                  "sequence": "Priority"}
        widgets = {
            "from_filter": UnfoldAdminTextInputWidget(
                attrs={"placeholder": "billing@acme.com, acme.com"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.describe_secrets()
        if "feedback_kind" in self.fields:  # a form posted without it keeps the stored kind
            self.fields["feedback_kind"].required = False
        if not self.instance.pk and "active" in self.fields:
            # bulk servers activate after a passed test; starting inactive avoids a refusal
            self.fields["active"].initial = False
            self.fields["active"].help_text = (
                "Servers that send bulk mail can be activated once Test connection passes.")

    def clean_feedback_kind(self):
        return self.cleaned_data.get("feedback_kind") or self.instance.feedback_kind

    def _post_clean(self):
        super()._post_clean()
        self.take_secrets(MailServer.SECRET_FIELDS)
        if not self.errors:
            try:
                check_server(self.instance)
            except ValidationError as exc:
                self._update_errors(exc)


class DkimKeyAddForm(forms.Form):
    """What the add page asks: the key itself is generated."""

    domain = forms.CharField(max_length=253, widget=UnfoldAdminTextInputWidget(
        attrs={"placeholder": "acme.com"}),
        help_text="The domain in your From addresses.")
    selector = forms.CharField(max_length=63, initial="mailroom",
                               widget=UnfoldAdminTextInputWidget(),
                               help_text="Any short name; a new selector lets you rotate keys.")
