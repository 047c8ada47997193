"""The pages behind a tip's signed links (no login: the token is the proof) and the sidebar
entry of the tips list.

- /digests/tips/click/<token>/: counts one click and redirects to the URL signed in the token,
  and only to it (no open redirect).
- /digests/tips/useful/<token>/?answer=yes|no: "Was this useful?". The GET only shows the
  page, with the answer from the email pre-selected; only the POST of its buttons records a
  vote. GET must never record: mail security scanners (Outlook Safe Links, Mimecast,
  Proofpoint…) open every link of a message before the reader does, and would vote "yes"
  and "no" for everyone.
- A bad or expired token is a 400 page with a plain message.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods

from mailroom.core import navigation
from mailroom.core.models import User
from mailroom.digests import tip_services
from mailroom.digests.models import Tip, TipView
from mailroom.digests.tip_links import ANSWERS, LinkError, read_click, read_vote
from mailroom.digests.tips import render as render_tip


def register_navigation() -> None:
    """The tips list in the sidebar (called from DigestsConfig.ready())."""
    navigation.add("Email", "Digest tips", "lightbulb", "admin:digests_tip_changelist",
                   "digests.view_tip")


def _page(request, context: dict, status: int = 200):
    return render(request, "digests/tip_link.html", {
        **admin.site.each_context(request), "title": "Was this tip useful?", **context},
        status=status)


@require_http_methods(["GET", "HEAD"])
def click(request, token: str):
    """Count the click, then redirect to the signed URL. (A scanner opening the link counts
    as a click too: a redirect cannot wait for a button; the votes are what cannot be faked.)
    """
    try:
        link = read_click(token)
    except LinkError as exc:
        return _page(request, {"problem": str(exc)}, status=400)
    if request.method == "GET":
        tip_services.record_click(link.tip_id, link.user_id)
    return HttpResponseRedirect(link.url)


@require_http_methods(["GET", "POST"])
def vote(request, token: str):
    """GET: the page with both buttons (records nothing). POST: records the vote."""
    try:
        link = read_vote(token)
    except LinkError as exc:
        return _page(request, {"problem": str(exc)}, status=400)
    tip = Tip.objects.filter(pk=link.tip_id).first()
    user = User.objects.filter(pk=link.user_id).first()
    if tip is None or user is None:
        return _page(request, {"problem": "This tip no longer exists."}, status=410)
    title, body = render_tip(tip, user, tip.company or user.current_company)
    context = {"tip": tip, "tip_title": title, "tip_body": mark_safe(body)}  # sanitized
    if request.method == "GET":
        # Never record here: link scanners of mail providers fetch every link of a message
        # (both Yes and No) before the reader sees it. Only the button's POST counts.
        answer = request.GET.get("answer", "")
        if answer not in ANSWERS:  # no answer in the link: show the one already given
            answer = (TipView.objects.filter(tip=tip, user=user)
                      .values_list("vote", flat=True).first() or "")
        return _page(request, {**context, "answer": answer})
    answer = request.POST.get("answer", "")
    try:
        tip_services.record_vote(tip.pk, user.pk, answer)
    except ValidationError as exc:
        return _page(request, {**context, "problem": " ".join(exc.messages)}, status=400)
    return _page(request, {**context, "answer": answer, "recorded": True})
