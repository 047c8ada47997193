"""Incoming pages beside the admin: a message's raw .eml, Reprocess one, Test an address.

Messages are loaded through `InboundMail.objects.for_user` (another company's is a 404); the
Reprocess button goes through `incoming.services.reprocess`, which checks the role and audits.
"""

from __future__ import annotations

import io

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods, require_POST

from mailroom.core.admin_actions import error_text
from mailroom.core.blobs import BlobError, BlobMissing
from mailroom.core.decorators import office_user_required
from mailroom.incoming import services
from mailroom.incoming.forms import TestAddressForm
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import dry_run

DECISION_COLOURS = {
    "created": "success", "posted": "success", "bounce": "info", "duplicate": "warning",
    "dropped": "warning", "refused": "danger", "quarantined": "danger",
}
STATE_COLOURS = {"received": "info", "done": "success", "quarantined": "danger"}
RULE_WORDS = {
    "duplicate": "Duplicate", "bounce": "Delivery report", "loop": "Loop / automatic reply",
    "thread": "Reply threading", "alias": "Alias", "fallback": "Fallback",
    "security": "Sender security", "post": "Deliver", "router": "Router",
}


def _mail_for(request, pk: int) -> InboundMail:
    mail = InboundMail.objects.for_user(request.user).filter(pk=pk).first()
    if mail is None or not request.user.has_perm("incoming.view_inboundmail"):
        raise Http404("No such message.")
    return mail


def record_link(mail: InboundMail) -> tuple[str, str] | None:
    """(admin URL or "", label) of the record the message landed on, or None."""
    if mail.content_type_id is None or mail.object_id is None:
        return None
    content_type = mail.content_type
    label = content_type.name.capitalize()
    record = mail.record
    if record is None:
        return "", f"{label} #{mail.object_id} (deleted)"
    try:
        url = reverse(f"admin:{content_type.app_label}_{content_type.model}_change",
                      args=[mail.object_id])
    except NoReverseMatch:
        url = ""
    return url, f"{label}: {record}"


def trace_rows(trace: list[dict]) -> list[dict]:
    """The router's trace as table rows; the last entry with a decision is the deciding one."""
    rows = []
    deciding = max((i for i, step in enumerate(trace) if step.get("decision")), default=-1)
    for i, step in enumerate(trace or []):
        decision = step.get("decision", "")
        label = (InboundMail.Decision(decision).label if decision in InboundMail.Decision.values
                 else decision.capitalize())
        rows.append({"rule": step.get("rule", ""),
                     "rule_label": RULE_WORDS.get(step.get("rule", ""), step.get("rule", "")),
                     "note": step.get("note", ""), "decision": decision,
                     "decision_label": label,
                     "colour": DECISION_COLOURS.get(decision, ""),
                     "deciding": i == deciding})
    return rows


def detail_context(mail: InboundMail, user) -> dict:
    link = record_link(mail)
    message_url = ""
    if mail.chatter_message_id and link and link[0]:
        message_url = f"{link[0]}#chatter-message-{mail.chatter_message_id}"
    return {
        "mail": mail,
        "state_colour": STATE_COLOURS.get(mail.state, ""),
        "decision_colour": DECISION_COLOURS.get(mail.decision, ""),
        "record": link,
        "message_url": message_url,
        "trace": trace_rows(mail.trace),
        "can_reprocess": user.has_perm("incoming.change_inboundmail")
        and mail.state != InboundMail.State.RECEIVED,
        "raw_url": reverse("incoming:raw", args=[mail.pk]),
        "log_url": reverse("admin:incoming_inboundmail_changelist"),
        "quarantine_url": reverse("admin:incoming_inboundmail_changelist")
        + "?state__exact=quarantined",
    }


@office_user_required
def raw(request, pk: int):
    """The message exactly as received, as a .eml download."""
    mail = _mail_for(request, pk)
    try:
        data = services.raw_bytes(mail)
    except (BlobMissing, OSError):
        raise Http404("The stored message cannot be read.") from None
    except BlobError:
        return HttpResponse("The file store cannot be reached just now; try again in a minute.",
                            status=503, content_type="text/plain; charset=utf-8")
    response = FileResponse(io.BytesIO(data), content_type="message/rfc822", as_attachment=True,
                            filename=f"inbound-{mail.pk}.eml")
    response["Content-Length"] = str(len(data))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@office_user_required
@require_POST
def reprocess(request, pk: int):
    mail = _mail_for(request, pk)
    try:
        count = services.reprocess([mail], actor=request.user)
    except PermissionDenied as exc:
        messages.error(request, error_text(exc))
    else:
        if count:
            messages.success(request, "Sent back to the router: it is routed again at the "
                                      "next worker pass.")
        else:
            messages.warning(request, "Nothing done: the message is already waiting to be "
                                      "routed.")
    return HttpResponseRedirect(reverse("admin:incoming_inboundmail_change", args=[mail.pk]))


@office_user_required
@require_http_methods(["GET", "POST"])
def test_address(request):
    """Run the router on a made-up message (rolled back) and show every rule's verdict."""
    user = request.user
    if not user.has_perm("routing.view_alias"):
        raise PermissionDenied
    company = user.current_company
    form = TestAddressForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        if company is None:
            form.add_error(None, "Choose a company first.")
        else:
            data = form.cleaned_data
            ctx = dry_run(company=company, sender=data["sender"], recipient=data["recipient"],
                          subject=data["subject"] or "Test", headers=data["headers"])
            rows = trace_rows(ctx.trace)
            deciding = next((row for row in rows if row["deciding"]), None)
            result = {"rows": rows, "deciding": deciding,
                      "auth": getattr(ctx.mail, "auth_summary", ""),
                      "sender": data["sender"], "recipient": data["recipient"]}
    context = {
        **admin.site.each_context(request),
        "title": "Test an address",
        "form": form,
        "result": result,
        "company": company,
    }
    return render(request, "incoming/test_address.html", context)


def quarantine_badge(request) -> str:
    """The sidebar's count of quarantined messages in the current company ("" when none)."""
    user = request.user
    if not user.is_authenticated or not user.has_perm("incoming.view_inboundmail"):
        return ""
    count = (InboundMail.objects.for_current_company(user)
             .filter(state=InboundMail.State.QUARANTINED).count())
    return str(count) if count else ""
