"""Unsubscribe and the preference centre (placeholder until built)."""

from django.http import HttpResponse


def preferences(request, token: str):
    return HttpResponse("Not built yet.", status=501)


def one_click(request, token: str):
    return HttpResponse("Not built yet.", status=501)
