"""One letter's rendering as a job that needs no database: the record's document from its
HTML, the envelope-window check, the cover page, merge and normalisation.

The services plan a letter (checks, address snapshot, the document's HTML: the database
work) and hand a `RenderJob` to `run` — in their own process for one letter, or to the render
pool (`letters.render_pool`) for many, where each core renders letters side by side. Both
paths run this same function, so a letter looks the same whichever way it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mailroom.documents.pdf import DocumentSource
from mailroom.letters.layout.generator import LetterLayoutError, LetterSpec, NormaliseError, build
from mailroom.letters.rendering import RenderedLetter, rendered, window_shows


@dataclass(frozen=True)
class JobDocument:
    """A document of the letter: a PDF as it is (`pdf`), or the record's own to render from
    `source`."""

    kind: str  # record | upload | attachment
    name: str
    pdf: bytes = b""
    source: DocumentSource | None = None


@dataclass(frozen=True)
class RenderJob:
    spec: LetterSpec  # everything but the documents
    documents: tuple[JobDocument, ...] = ()
    address_name: str = ""  # the window must show it, or the letter gets a cover page


@dataclass(frozen=True)
class RenderOutcome:
    documents: list[tuple[str, str, bytes]] = field(default_factory=list)  # (kind, name, pdf)
    letter: RenderedLetter | None = None
    cover_added: bool = False  # the first document showed no address in the window
    error: str = ""  # in plain words, when the letter cannot be laid out


def run(job: RenderJob) -> RenderOutcome:
    docs = [(doc.kind, doc.name, doc.source.render().content if doc.source else doc.pdf)
            for doc in job.documents]
    spec = replace(job.spec, documents=[content for _, _, content in docs])
    cover_added = bool(docs) and not spec.cover_page and not window_shows(
        docs[0][2], spec.standard, job.address_name)
    if cover_added:
        spec = replace(spec, cover_page=True)
    try:
        letter = rendered(build(spec))
    except (LetterLayoutError, NormaliseError) as exc:
        return RenderOutcome(docs, None, cover_added, str(exc))
    return RenderOutcome(docs, letter, cover_added)
