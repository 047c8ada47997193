"""What goes wrong in the sandbox: the error users see and the two signals behind it."""

from __future__ import annotations

__all__ = ["TemplateError"]


class TemplateError(Exception):
    """A render or syntax error, in words a user understands, pointing at the template part."""

    def __init__(self, message: str, *, template: str = "template", field: str = "body",
                 line: int | None = None) -> None:
        self.template, self.field, self.line, self.message = template, field, line, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f", line {self.line}" if self.line else ""
        return f"Template '{self.template}', {self.field}{where}: {self.message}"


class _Refused(Exception):
    """A limit or rule of the sandbox; the message is shown to the user as is."""


class _CompileProblem(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message, self.line = message, line
