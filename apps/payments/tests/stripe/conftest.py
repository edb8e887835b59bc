"""The local fake Stripe for the whole test session, and a clean slate of it for each test."""

import urllib.request
from collections.abc import Iterator

import pytest
import stripe

from apps.payments.stripe.client import configure
from apps.payments.stripe.fake_server import running


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """localstripe on a free port of 127.0.0.1, started once for the session and stopped after it."""
    with running(port=0) as url:
        yield url


def _delete(url: str) -> None:
    request = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our local server
        assert response.status == 200


@pytest.fixture
def localstripe(localstripe_url, settings) -> Iterator[str]:
    """Card payments on, against an empty localstripe (objects and saved idempotent responses
    forgotten, so that ids reused after another test's rollback never meet an old answer)."""
    _delete(f"{localstripe_url}/_config/data")
    _delete(f"{localstripe_url}/_config/idempotency_keys")
    settings.STRIPE_ENABLED = True
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    configure()
    yield localstripe_url
    stripe.api_base = stripe.DEFAULT_API_BASE
