"""Placeholders kept out of the way while HTML is finished once for many mails.

The expensive part of a mail — the layout, CSS inlining, the text part — is the same for
every recipient of a campaign or a mass send. `Markers.hide` swaps each `{{ … }}` for an
inert word, the HTML is finished once, and `Markers.jinja` gives it back as a template
source with the placeholders restored and every other brace neutralised (`&#123;`), so
nothing from the layout or the company's data is ever read as a template. `text_parts`
splits the finished text part at its markers, for joining with each mail's values.
"""

from __future__ import annotations

import re
import secrets

PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.S)
_JINJA_OPEN = re.compile(r"\{(?=[{%#])")


class Markers:
    """Inert words standing for template expressions while the HTML is being finished."""

    def __init__(self) -> None:
        self.prefix = f"mr{secrets.token_hex(5)}x"
        self.sources: list[str] = []
        self.pattern = re.compile(re.escape(self.prefix) + r"(\d+)z")

    def mark(self, expression: str) -> str:
        self.sources.append(expression)
        return f"{self.prefix}{len(self.sources) - 1}z"

    def hide(self, source: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.mark(m[0]), source)

    def jinja(self, finished: str) -> str:
        """Finished HTML as a Jinja source: literal braces neutralised, markers restored."""
        finished = _JINJA_OPEN.sub("&#123;", finished)
        return self.pattern.sub(lambda m: self.sources[int(m[1])], finished)

    def text_parts(self, text: str) -> list[str | int]:
        parts: list[str | int] = []
        position = 0
        for match in self.pattern.finditer(text):
            parts.append(text[position:match.start()])
            parts.append(int(match[1]))
            position = match.end()
        parts.append(text[position:])
        return parts
