"""The deliverability page: the viewer's company's sending domains, the three checks of the one
chosen, a 404 for a domain that is not one of them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.campaigns import test_deliverability as checks

DOMAIN = checks.DOMAIN
dns, sending = checks.dns, checks.sending  # fixtures

pytestmark = pytest.mark.django_db
URL = reverse("campaigns:deliverability")


def test_the_page_shows_the_three_checks_of_the_domain(client_for, dns, sending, mia):
    del dns.records[f"_dmarc.{DOMAIN}"]
    page = client_for(mia).get(URL, {"domain": DOMAIN})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-status="fail"' in html and "campaigns from it are refused" in html
    assert 'data-check="SPF"' in html and 'class="mr-check mr-check-pass" data-check="SPF"' in html
    assert 'class="mr-check mr-check-fail" data-check="DMARC"' in html
    assert "Publish a TXT record at _dmarc.acme.test" in html


def test_the_first_domain_is_checked_when_none_is_named_and_check_again_asks_dns(
        client_for, dns, sending, bob):
    browser = client_for(bob)  # a User sees campaigns, so the check too
    assert 'data-status="pass"' in browser.get(URL).content.decode()
    del dns.records[f"_dmarc.{DOMAIN}"]
    assert 'data-status="pass"' in browser.get(URL).content.decode()  # cached
    assert 'data-status="fail"' in browser.get(URL, {"domain": DOMAIN, "fresh": "1"}
                                               ).content.decode()


def test_another_companys_domain_is_a_404(client_for, dns, sending, charlie):
    assert client_for(charlie).get(URL, {"domain": DOMAIN}).status_code == 404
    page = client_for(charlie).get(URL)
    assert page.status_code == 200 and "No sending domain yet" in page.content.decode()
