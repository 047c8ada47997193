"""Reading an uploaded contact file: rows, the column mapping, and each row's verdict.

No writes here: the upload view, the preview and the worker (`campaigns.tasks`) share these
functions, so the preview counts exactly what the import will do. A row is refused, with a
reason a person understands, when its address is invalid, when the same address appeared
earlier in the file, when the contact is suppressed (blacklisted, or bounced/complained on
this list) or when the person unsubscribed from this list (an import never resubscribes).
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models.functions import Lower
from django_countries import countries

from mailroom.campaigns.models import ImportBadRow, ImportJob, MailingList, Subscription
from mailroom.contacts.models import Partner
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.lib.addresses import InvalidAddress, sendable_email

FIELDS = ("email", "name", "company", "country", "language", "tags")
FIELD_LABELS = {"email": "Email (required)", "name": "Name", "company": "Company",
                "country": "Country", "language": "Language", "tags": "Tags"}
# header words that name each field, compared without case, spaces or punctuation
SYNONYMS = {
    "email": {"email", "emailaddress", "mail", "courriel", "emailadresse", "correo",
              "eaddress"},
    "name": {"name", "fullname", "contact", "contactname", "nom", "person"},
    "company": {"company", "companyname", "organisation", "organization", "org", "employer",
                "societe", "firma", "business"},
    "country": {"country", "countrycode", "pays", "land", "nation"},
    "language": {"language", "lang", "locale", "langue", "sprache"},
    "tags": {"tags", "tag", "labels", "label", "categories", "groups"},
}
Reason = ImportBadRow.Reason
LANGUAGES = {code for code, _ in LANGUAGE_CHOICES}
COUNTRY_BY_NAME = {name.lower(): code for code, name in countries}


class ImportFileError(ValueError):
    """The file cannot be read; the message says why in plain words."""


def file_format(filename: str) -> str:
    name = (filename or "").lower()
    if name.endswith(".xlsx"):
        return ImportJob.Format.XLSX
    if name.endswith((".csv", ".txt", ".tsv")):
        return ImportJob.Format.CSV
    raise ImportFileError("Upload a .csv or .xlsx file.")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value).replace("\x00", "").strip()


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    text = text.replace("\x00", "")
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield [cell.strip() for cell in row]
    except csv.Error as exc:
        raise ImportFileError(f"The CSV file is malformed near line {reader.line_num}: "
                              f"{exc}.") from None


def _xlsx_rows(content: bytes) -> Iterator[list[str]]:
    import openpyxl  # only imports that need it pay for it

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - a damaged file raises many kinds of errors
        raise ImportFileError("This is not an Excel .xlsx file Mailroom can read; save it "
                              "again as .xlsx or as CSV.") from None
    try:
        if not book.worksheets:
            raise ImportFileError("The Excel file has no sheet.")
        try:
            for row in book.worksheets[0].iter_rows(values_only=True):
                yield [_cell(value) for value in row]
        except ImportFileError:
            raise
        except Exception:  # noqa: BLE001
            raise ImportFileError("The Excel file is damaged; save it again as .xlsx or as "
                                  "CSV.") from None
    finally:
        book.close()


def read_rows(content: bytes, fmt: str) -> Iterator[list[str]]:
    """Every row of the file (the first sheet of a workbook), cells as stripped text."""
    rows = _xlsx_rows(content) if fmt == ImportJob.Format.XLSX else _csv_rows(content)
    yield from rows


def data_rows(content: bytes, fmt: str, has_header: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank data row; line 1 is the file's first line."""
    for number, row in enumerate(read_rows(content, fmt), start=1):
        if number == 1 and has_header:
            continue
        if any(row):
            yield number, row


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _looks_like_address(value: str) -> bool:
    if "@" not in value:
        return False
    try:
        sendable_email(value)
    except InvalidAddress:
        return False
    return True


def detect_header(first_row: list[str]) -> bool:
    """A first row holding an address is data, not a header."""
    return not any(_looks_like_address(cell) for cell in first_row)


def guess_mapping(first_row: list[str], has_header: bool) -> dict[str, int]:
    """Which column holds each field, guessed from the header's words (or, without a header,
    the email column from the first row's content)."""
    mapping: dict[str, int] = {}
    if has_header:
        keys = [_key(cell) for cell in first_row]
        for name in FIELDS:
            for index, key in enumerate(keys):
                if index in mapping.values():
                    continue
                if key in SYNONYMS[name] or (name == "email" and "email" in key):
                    mapping[name] = index
                    break
    else:
        for index, cell in enumerate(first_row):
            if _looks_like_address(cell):
                mapping["email"] = index
                break
    return mapping


def column_labels(first_row: list[str], has_header: bool, width: int) -> list[str]:
    labels = []
    for index in range(width):
        letter = ""
        n = index
        while True:
            letter = chr(ord("A") + n % 26) + letter
            n = n // 26 - 1
            if n < 0:
                break
        head = first_row[index] if has_header and index < len(first_row) else ""
        labels.append(f"{letter}: {head[:40]}" if head else f"Column {letter}")
    return labels


def clean_mapping(raw: dict[str, str], width: int) -> dict[str, int]:
    """The mapping a form sent ({field: column index as text}); unknown or out-of-range
    values are dropped, and one column serves one field."""
    mapping: dict[str, int] = {}
    for name in FIELDS:
        value = (raw.get(name) or "").strip()
        if value.isascii() and value.isdigit() and len(value) < 6 and int(value) < width:
            if int(value) not in mapping.values():
                mapping[name] = int(value)
    return mapping


# --- the verdict on each row ---------------------------------------------------------------

@dataclass
class RowResult:
    line: int
    values: list[str]
    email: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    message: str = ""
    partner: Partner | None = None
    subscription_status: str = ""

    @property
    def good(self) -> bool:
        return not self.reason


def _get(row: list[str], mapping: dict[str, int], name: str) -> str:
    index = mapping.get(name)
    return row[index][:500] if index is not None and index < len(row) else ""


def country_code(value: str) -> str:
    value = value.strip()
    if len(value) == 2 and value.upper() in countries:
        return value.upper()
    return COUNTRY_BY_NAME.get(value.lower(), "")


def language_code(value: str) -> str:
    value = value.strip().replace("-", "_")
    if value in LANGUAGES:
        return value
    for code in sorted(LANGUAGES):
        if code.lower() == value.lower() or code.split("_")[0] == value.lower():
            return code
    return ""


def classify(rows: Iterable[tuple[int, list[str]]], mapping: dict[str, int],
             mailing_list: MailingList, seen: dict[str, int], *,
             check_contacts: bool = True) -> list[RowResult]:
    """Judge a batch of rows. `seen` (address → line) holds the addresses of earlier good
    rows and gains this batch's: a later row with the same address is a duplicate.
    `check_contacts=False` skips the database (rows already imported only feed `seen`)."""
    results: list[RowResult] = []
    for line, values in rows:
        result = RowResult(line=line, values=[cell[:500] for cell in values[:50]])
        raw = _get(values, mapping, "email")
        result.fields = {name: _get(values, mapping, name) for name in FIELDS}
        try:
            result.email = _snapshot(raw)
        except InvalidAddress as exc:
            result.email = raw[:254]
            result.reason, result.message = Reason.INVALID, (
                f"Invalid address: {exc}" if raw else "No email address in this row.")
        else:
            if result.email in seen:
                result.reason, result.message = Reason.DUPLICATE, (
                    f"Same address as line {seen[result.email]}.")
            else:
                seen[result.email] = line
        results.append(result)
    if check_contacts:
        _check_contacts([r for r in results if r.good], mailing_list)
    return results


def _snapshot(raw: str) -> str:
    return sendable_email(raw).lower()


def _check_contacts(results: list[RowResult], mailing_list: MailingList) -> None:
    """Attach existing contacts and refuse the suppressed and the unsubscribed."""
    if not results:
        return
    emails = {r.email for r in results}
    partners: dict[str, Partner] = {}
    blacklisted: set[str] = set()
    found = (Partner.objects.filter(company_id=mailing_list.company_id)
             .annotate(email_lower=Lower("email")).filter(email_lower__in=emails)
             .order_by("-active", "pk"))
    for partner in found:
        if partner.is_blacklisted:
            blacklisted.add(partner.email_lower)
        partners.setdefault(partner.email_lower, partner)
    statuses = dict(Subscription.objects.filter(
        mailing_list=mailing_list, partner__in=[p.pk for p in partners.values()])
        .values_list("partner_id", "status"))
    left = {Subscription.Status.BOUNCED: "bounced", Subscription.Status.COMPLAINED:
            "complained (marked a mail as spam)"}
    for result in results:
        partner = partners.get(result.email)
        result.partner = partner
        status = statuses.get(partner.pk, "") if partner is not None else ""
        result.subscription_status = status
        if result.email in blacklisted:
            result.reason, result.message = Reason.SUPPRESSED, (
                "Suppressed: this address is blacklisted.")
        elif status == Subscription.Status.UNSUBSCRIBED:
            result.reason, result.message = Reason.UNSUBSCRIBED, (
                "Unsubscribed from this list; an import does not subscribe them again.")
        elif status in left:
            result.reason, result.message = Reason.SUPPRESSED, (
                f"Suppressed: {left[status]} on this list.")


@dataclass
class Preview:
    rows: list[RowResult]
    good: int
    bad: int
    counted: int
    total: int
    by_reason: dict[str, int]

    @property
    def partial(self) -> bool:
        return self.counted < self.total


PREVIEW_ROWS = 10
PREVIEW_COUNT_LIMIT = 20_000  # beyond, the preview counts the first rows and says so


def preview(content: bytes, fmt: str, has_header: bool, mapping: dict[str, int],
            mailing_list: MailingList) -> Preview:
    """The first rows with their verdicts, and good/bad counts over the file (its first
    PREVIEW_COUNT_LIMIT rows for larger files)."""
    seen: dict[str, int] = {}
    shown: list[RowResult] = []
    good = bad = counted = total = 0
    by_reason: dict[str, int] = {}
    batch: list[tuple[int, list[str]]] = []

    def judge() -> None:
        nonlocal good, bad
        for result in classify(batch, mapping, mailing_list, seen):
            if len(shown) < PREVIEW_ROWS:
                shown.append(result)
            if result.good:
                good += 1
            else:
                bad += 1
                by_reason[result.reason] = by_reason.get(result.reason, 0) + 1
        batch.clear()

    for row in data_rows(content, fmt, has_header):
        total += 1
        if counted < PREVIEW_COUNT_LIMIT:
            counted += 1
            batch.append(row)
            if len(batch) >= 1000:
                judge()
    judge()
    return Preview(rows=shown, good=good, bad=bad, counted=counted, total=total,
                   by_reason=by_reason)
