"""The open pixel and click redirects (placeholder until built)."""

from django.http import HttpResponse


def open_pixel(request, token: str):
    return HttpResponse("Not built yet.", status=501)


def click(request, token: str, number: int):
    return HttpResponse("Not built yet.", status=501)
