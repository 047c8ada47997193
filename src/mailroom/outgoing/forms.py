"""Forms of the outgoing screens. Secrets are write-only: never rendered back, blank keeps."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import (
    UnfoldAdminPasswordWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from mailroom.outgoing.models import MailServer

# form field -> what it is, for the help line ("A password is stored. Leave blank to keep it.")
SECRET_FIELDS = {
    "password": "password",
    "oauth_client_secret": "client secret",
    "oauth_refresh_token": "refresh token",
    "client_key": "private key",
}


def _secret_field(label: str, *, multiline: bool = False) -> forms.CharField:
    if multiline:  # a PEM key keeps its line breaks; the textarea is always rendered empty
        widget = UnfoldAdminTextareaWidget(attrs={"rows": 4, "autocomplete": "off",
                                                  "spellcheck": "false"})
    else:
        widget = UnfoldAdminPasswordWidget(attrs={"autocomplete": "new-password"},
                                           render_value=False)
    return forms.CharField(label=label, required=False, strip=not multiline, widget=widget)


class MailServerForm(forms.ModelForm):
    password = _secret_field("Password")
    oauth_client_secret = _secret_field("OAuth client secret")
    oauth_refresh_token = _secret_field("OAuth refresh token")
    client_key = _secret_field("Client private key (PEM)", multiline=True)
    forget_secrets = forms.BooleanField(
        label="Erase stored secrets", required=False, widget=UnfoldBooleanSwitchWidget,
        help_text="Removes the stored password, OAuth secrets and client key.")

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
        stored = self.instance if self.instance.pk else None
        for name, what in SECRET_FIELDS.items():
            field = self.fields.get(name)
            if field is None:
                continue
            if stored is not None and getattr(stored, name):
                field.help_text = f"A {what} is stored. Leave blank to keep it."
            else:
                field.help_text = f"No {what} stored."
        if stored is None and "active" in self.fields:
            # bulk servers activate after a passed test; starting inactive avoids a refusal
            self.fields["active"].initial = False
            self.fields["active"].help_text = (
                "Servers that send bulk mail can be activated once Test connection passes.")

    def _post_clean(self):
        super()._post_clean()
        data = getattr(self, "cleaned_data", {})
        if data.get("forget_secrets"):
            for name in MailServer.SECRET_FIELDS:
                setattr(self.instance, name, "")
        entered = set()
        for name in SECRET_FIELDS:
            value = data.get(name)
            if value and value.strip():
                setattr(self.instance, name, value.strip() if name != "client_key" else value)
                entered.add(name)
        # save_server keeps the stored value of every secret not typed here, so a token a
        # worker rotated while this form was open is not put back to the old one
        self.instance._entered_secrets = entered
        if not self.errors:
            from mailroom.outgoing.server_services import check_server

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
