"""The sandbox that renders user-written email templates; moved here whole, split next."""

from mailroom.lib.sandbox.environment import (
    CompiledTemplate,
    Limits,
    TemplateError,
    check_simple,
    compile_template,
    placeholders,
    render_string,
)

__all__ = ["CompiledTemplate", "Limits", "TemplateError", "check_simple", "compile_template",
           "placeholders", "render_string"]
