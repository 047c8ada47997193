"""The suppression list: addresses a company never mails in bulk again.

A row says why (unsubscribed from all, hard bounce, complaint, added by hand or imported) and
since when. Campaigns leave suppressed addresses out of their audience and the sender drops a
queued campaign mail whose address became suppressed (send_checks.py).

- `suppress(company, email, reason, *, actor)`: idempotent (the first row, its reason and date
  are kept); `actor` None is the system (a person's own "Unsubscribe from all", a bounce).
- `unsuppress(company, email, *, actor)`: Mail Managers, audited.
- `is_suppressed`, `suppressed_among` (one query for many addresses).
- `import_csv`: one address per row, or the `email` column of a file with a header; every
  refused row is reported with its line and reason. `export_rows` feeds the CSV download.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from mailroom.campaigns.imports import ImportFileError, _csv_rows
from mailroom.campaigns.models import Suppression
from mailroom.core.access import require
from mailroom.core.models import Company
from mailroom.core.services import audit
from mailroom.lib.addresses import InvalidAddress, sendable_email

Reason = Suppression.Reason
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_BAD_ROWS = 1000  # reported; more are only counted
EXPORT_HEADER = ["email", "reason", "note", "created_at"]


def normalise(address: str) -> str:
    """The form a suppression row keeps: normalised, lower-case. InvalidAddress else."""
    return sendable_email((address or "").strip()).lower()


def _company_id(company: Company | int) -> int:
    return company if isinstance(company, int) else company.pk


def _by(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


def suppress(company: Company, email: str, reason: str, *, actor,
             note: str = "") -> tuple[Suppression, bool]:
    """Put `email` on the company's suppression list: (row, created). Idempotent: an address
    already there keeps its first reason and date."""
    require(actor, "campaigns.add_suppression", company,
            denied="Only Mail Managers can add addresses to the suppression list.")
    if reason not in Reason.values:
        raise ValidationError({"reason": f"Unknown reason {reason!r}."})
    try:
        address = normalise(email)
    except InvalidAddress as exc:
        raise ValidationError({"email": f"Not an email address: {exc}"}) from None
    with transaction.atomic():
        row, created = Suppression.objects.get_or_create(
            company_id=company.pk, email=address,
            defaults={"reason": reason, "note": (note or "")[:500], "created_by": _by(actor),
                      "created_at": timezone.now()})
        if created and actor is not None:
            audit("campaigns.suppression.add", actor=actor, obj=row,
                  after={"email": address, "reason": reason, "note": row.note})
    return row, created


def unsuppress(company: Company, email: str, *, actor, note: str = "") -> bool:
    """Take `email` off the suppression list (Mail Managers; audited). False when it was not
    on it. Its subscriptions stay as they are: nobody is put back on a list by this."""
    require(actor, "campaigns.delete_suppression", company,
            denied="Only Mail Managers can remove addresses from the suppression list.")
    try:
        address = normalise(email)
    except InvalidAddress:
        address = (email or "").strip().lower()
    with transaction.atomic():
        row = (Suppression.objects.select_for_update()
               .filter(company_id=company.pk, email=address).first())
        if row is None:
            return False
        audit("campaigns.suppression.remove", actor=actor, obj=row,
              before={"email": row.email, "reason": row.reason, "note": row.note,
                      "created_at": row.created_at.isoformat()},
              after={"note": note[:500]} if note else None)
        row.delete()
    return True


def is_suppressed(company: Company | int, email: str) -> bool:
    try:
        address = normalise(email)
    except InvalidAddress:
        address = (email or "").strip().lower()
    return Suppression.objects.filter(company_id=_company_id(company), email=address).exists()


def suppressed_among(company: Company | int, emails: Iterable[str]) -> set[str]:
    """Which of `emails` (already lower-case) are suppressed, in one query per 1,000."""
    wanted = sorted({e.lower() for e in emails if e})
    found: set[str] = set()
    for first in range(0, len(wanted), 1000):
        found.update(Suppression.objects.filter(
            company_id=_company_id(company), email__in=wanted[first:first + 1000])
            .values_list("email", flat=True))
    return found


# --- import and export -----------------------------------------------------------------------

@dataclass
class ImportResult:
    added: int = 0
    already: int = 0
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (line, value, why)
    bad_count: int = 0

    def refuse(self, line: int, value: str, why: str) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_ROWS:
            self.bad.append((line, value[:254], why))


def _addresses(content: bytes) -> Iterator[tuple[int, str]]:
    """(line, cell) of each data row: the `email` column when the first row names one, else
    the first cell of every row."""
    column = 0
    for line, row in enumerate(_csv_rows(content), start=1):
        if line == 1:
            names = [cell.strip().lower() for cell in row]
            for name in ("email", "e-mail", "email address", "address"):
                if name in names:
                    column = names.index(name)
                    break
            else:
                names = None
            if names is not None:
                continue  # the header row
        if not any(row):
            continue  # blank lines are not refused rows
        yield line, row[column] if column < len(row) else ""


def import_csv(company: Company, content: bytes, *, actor, note: str = "") -> ImportResult:
    """Add every valid address of a CSV file to the suppression list (reason "Imported").
    Addresses already there keep their row; refused rows come back with their line number."""
    require(actor, "campaigns.add_suppression", company,
            denied="Only Mail Managers can import into the suppression list.")
    if len(content) > MAX_IMPORT_BYTES:
        raise ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // 1048576} MB; "
                              "split it.")
    result = ImportResult()
    seen: set[str] = set()
    try:
        for line, value in _addresses(content):
            try:
                address = normalise(value)
            except InvalidAddress as exc:
                result.refuse(line, value, f"Not an email address: {exc}" if value
                              else "No address in this row.")
                continue
            if address in seen:
                result.refuse(line, value, "Listed twice in the file.")
                continue
            seen.add(address)
    except ImportFileError as exc:
        raise ValidationError(str(exc)) from None
    now = timezone.now()
    with transaction.atomic():
        existing = suppressed_among(company, seen)
        rows = [Suppression(company_id=company.pk, email=address, reason=Reason.IMPORT,
                            note=(note or "")[:500], created_at=now, created_by=_by(actor))
                for address in sorted(seen - existing)]
        Suppression.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        result.added, result.already = len(rows), len(existing)
        audit("campaigns.suppression.import", actor=actor, company=company,
              after={"added": result.added, "already": result.already,
                     "refused": result.bad_count, "note": note[:500]})
    return result


def export_rows(company: Company, *, actor) -> Iterator[list[str]]:
    """The company's suppression list as CSV rows (without the header, EXPORT_HEADER)."""
    require(actor, "campaigns.view_suppression", company,
            denied="Your roles do not allow you to see the suppression list.")
    rows = (Suppression.objects.filter(company_id=company.pk).order_by("email", "id")
            .values_list("email", "reason", "note", "created_at"))
    for email, reason, note, created_at in rows.iterator(chunk_size=2000):
        yield [email, reason, note, created_at.isoformat()]
