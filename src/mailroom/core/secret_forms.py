"""Write-only secrets in server forms: never rendered back, a blank field keeps the stored
value, and "Erase stored secrets" clears them all. Shared by outgoing and incoming servers."""

from __future__ import annotations

from django import forms
from unfold.widgets import UnfoldAdminPasswordWidget, UnfoldAdminTextareaWidget


def secret_field(label: str, *, multiline: bool = False) -> forms.CharField:
    if multiline:  # a PEM key keeps its line breaks; the textarea is always rendered empty
        widget = UnfoldAdminTextareaWidget(attrs={"rows": 4, "autocomplete": "off",
                                                  "spellcheck": "false"})
    else:
        widget = UnfoldAdminPasswordWidget(attrs={"autocomplete": "new-password"},
                                           render_value=False)
    return forms.CharField(label=label, required=False, strip=not multiline, widget=widget)


class WriteOnlySecrets:
    """ModelForm mixin. `secret_fields` maps a form field to what it is, for the help line
    ("A password is stored. Leave blank to keep it."); `multiline_secrets` keep whitespace."""

    secret_fields: dict[str, str] = {}
    multiline_secrets: frozenset[str] = frozenset()

    def describe_secrets(self) -> None:
        stored = self.instance if self.instance.pk else None
        for name, what in self.secret_fields.items():
            field = self.fields.get(name)
            if field is None:
                continue
            if stored is not None and getattr(stored, name):
                field.help_text = f"A {what} is stored. Leave blank to keep it."
            else:
                field.help_text = f"No {what} stored."

    def take_secrets(self, all_secret_fields) -> set[str]:
        """Put what was typed on the instance. The service keeps the stored value of every
        secret not typed (`instance._entered_secrets`), so a token a worker rotated while the
        form was open is not put back to the old one."""
        data = getattr(self, "cleaned_data", {})
        if data.get("forget_secrets"):
            for name in all_secret_fields:
                setattr(self.instance, name, "")
        entered = set()
        for name in self.secret_fields:
            value = data.get(name)
            if value and value.strip():
                setattr(self.instance, name,
                        value if name in self.multiline_secrets else value.strip())
                entered.add(name)
        self.instance._entered_secrets = entered
        self.instance._forget_secrets = bool(data.get("forget_secrets"))
        return entered
