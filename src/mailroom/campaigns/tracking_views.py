"""The open pixel and the click redirect a campaign mail carries (/l/o/…, /l/c/…): no login,
a signed per-recipient token (tokens.TRACK). They only read the token and call the services
in tracking.py.

The pixel always answers with the image, even for a forged or unknown token (a broken image
in someone's mail helps nobody); it records nothing then. The click redirect goes only to a
link stored for the recipient's own campaign: anything else is a 404 page, never a redirect.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from mailroom.campaigns import tokens, tracking

# a 1×1 transparent GIF (43 bytes)
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00"
       b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    return response


@require_safe
def open_pixel(request, token: str):
    ids = tokens.read(tokens.TRACK, token)
    if ids is not None and request.method == "GET":
        tracking.record_open(*ids, user_agent=request.headers.get("User-Agent", ""))
    return _no_store(HttpResponse(GIF, content_type="image/gif"))


@require_safe
def click(request, token: str, number: int):
    ids = tokens.read(tokens.TRACK, token)
    url = ids and tracking.record_click(*ids, number, record=request.method == "GET")
    if not url:
        raise Http404("This link is not valid (it may have been copied incompletely).")
    # the URL is one the campaign's author wrote (a CampaignLink), never one the request names
    return _no_store(HttpResponseRedirect(url))
