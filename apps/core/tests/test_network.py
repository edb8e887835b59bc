"""The client's address (apps/core/network.py): behind proxies, read from `X-Forwarded-For`, without a
port or brackets, and `REMOTE_ADDR` when what the proxy wrote is not an IP address."""

import pytest
from django.test import RequestFactory

from apps.core.network import client_address


@pytest.fixture
def behind_one_proxy(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def _address(forwarded_for: str) -> str:
    request = RequestFactory().get("/", REMOTE_ADDR="192.168.0.10", HTTP_X_FORWARDED_FOR=forwarded_for)
    return client_address(request)


@pytest.mark.parametrize(
    ("forwarded_for", "address"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 10.0.0.1, 1.2.3.4 ", "1.2.3.4"),
        ("1.2.3.4:5678", "1.2.3.4"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:DB8:0::1]", "2001:db8::1"),
        ("[::1]:443", "::1"),
        ("garbage", "192.168.0.10"),
        ("1.2.3.4:http", "192.168.0.10"),
        ("1.2.3.999", "192.168.0.10"),
        ("[2001:db8::1]443", "192.168.0.10"),
        ("[2001:db8::1", "192.168.0.10"),
        ("fe80::1%eth0", "192.168.0.10"),
        ("", "192.168.0.10"),
    ],
)
def test_behind_a_proxy_the_forwarded_address_is_checked(behind_one_proxy, forwarded_for, address):
    assert _address(forwarded_for) == address


def test_without_proxies_the_header_is_ignored():
    assert _address("1.2.3.4") == "192.168.0.10"
