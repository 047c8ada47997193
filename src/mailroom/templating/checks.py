"""Placeholders checked before a template is saved: every path must be one the record type's
context holds (`context.context_schema`), so a misspelt field is refused in the form and the
API with the nearest valid names, instead of failing when the mail is sent."""

from __future__ import annotations

from mailroom.core import record_types
from mailroom.lib.sandbox import UnknownPath, unknown_paths
from mailroom.templating.context import context_schema


def describe(unknown: UnknownPath, record_type: record_types.RecordType) -> str:
    """“Line 2: ‘object.partner.nam’ is not a field of quotations. Did you mean
    ‘object.partner.name’?”"""
    text = (f"Line {unknown.line}: ‘{unknown.path}’ is not a field of "
            f"{record_type.label_plural.lower()}.")
    if unknown.hint:
        text += f" {unknown.hint[0].upper()}{unknown.hint[1:]}."
    if unknown.suggestions:
        names = " or ".join(f"‘{s}’" for s in unknown.suggestions)
        text += f" Did you mean {names}?"
    return text


def unknown_placeholders(source: str, record_type: record_types.RecordType) -> list[str]:
    """One message per unknown path in `source` (a compiled, syntactically valid template)."""
    return [describe(u, record_type) for u in unknown_paths(source, context_schema(record_type))]
