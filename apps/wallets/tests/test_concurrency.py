"""Credits are never spent twice and two top-ups racing leave one (PostgreSQL row locks)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from djmoney.money import Money

from apps.core.tests.concurrency import run_in_threads
from apps.invoices.models import Invoice
from apps.invoices.services.lifecycle import invoice_finalize
from apps.invoices.tests.factories import make_manual_invoice
from apps.payments.tests.factories import make_customer
from apps.subscriptions.periods import utc
from apps.wallets.constants import PurchaseTrigger, WalletEntryKind
from apps.wallets.models import CreditPurchase, PrepaidStatusChange, WalletEntry
from apps.wallets.selectors import wallet_balance
from apps.wallets.services.ledger import wallet_grant
from apps.wallets.services.purchases import wallet_top_up

from .factories import make_wallet

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is a PostgreSQL property"),
]


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_invoices_finalized_at_once_never_spend_the_same_credits_twice():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="1.00")
    wallet_grant(wallet_id=wallet.pk, credits="100", category="promotion", reason="Offer", now=utc(2026, 1, 1))
    drafts = [
        make_manual_invoice(
            customer=customer, lines=[("Consulting", "1", "30.00")], now=utc(2026, 1, 5), finalize=False
        )
        for _ in range(4)
    ]

    run_in_threads(lambda index: invoice_finalize(invoice_id=drafts[index].pk, now=utc(2026, 1, 5)).pk, count=4)

    # 4 × 30.00 due, 100 credits: three invoices fully paid by credits, the last one 10.00 of its 30.00.
    totals = sorted(Invoice.objects.filter(pk__in=[d.pk for d in drafts]).values_list("total", flat=True))
    assert totals == [Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), Decimal("20.00")]
    consumed = WalletEntry.objects.filter(kind=WalletEntryKind.CONSUMPTION)
    assert sum(entry.amount.amount for entry in consumed) == Decimal("-100.00")
    assert wallet_balance(wallet=wallet) == Decimal(0)


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_two_top_ups_racing_leave_one():
    customer = make_customer(currency="USD")
    wallet = make_wallet(customer, rate="0.10", top_up_threshold=Decimal(100), top_up_credits=Decimal(500))

    results = run_in_threads(lambda index: wallet_top_up(wallet_id=wallet.pk, now=utc(2026, 1, 5)), count=4)

    started = [result for result in results if result is not None]
    assert len(started) == 1
    [purchase] = CreditPurchase.objects.all()
    assert (purchase.trigger, purchase.credits) == (PurchaseTrigger.AUTO_TOP_UP, Decimal(500))
    assert purchase.invoice.total == Money("50.00", "USD")
    assert Invoice.objects.count() == 1


@override_settings(INVOICE_DRAFT_GRACE_HOURS=0)
def test_running_out_under_concurrent_consumption_is_one_transition_and_so_is_refilling():
    customer = make_customer(currency="USD")
    main = make_wallet(customer, rate="1.00")
    second = make_wallet(customer, name="Second", rate="1.00")
    wallet_grant(wallet_id=main.pk, credits="50", category="promotion", reason="Offer", now=utc(2026, 1, 1))
    wallet_grant(wallet_id=second.pk, credits="40", category="promotion", reason="Offer", now=utc(2026, 1, 1))
    drafts = [
        make_manual_invoice(
            customer=customer, lines=[("Consulting", "1", "30.00")], now=utc(2026, 1, 5), finalize=False
        )
        for _ in range(4)
    ]

    run_in_threads(lambda index: invoice_finalize(invoice_id=drafts[index].pk, now=utc(2026, 1, 5)).pk, count=4)

    assert list(PrepaidStatusChange.objects.values_list("credits_exhausted", "credits")) == [(True, Decimal(0))]

    # Four grants racing, on both wallets: credits are back once.
    wallets = [main, second, main, second]
    run_in_threads(
        lambda index: (
            wallet_grant(
                wallet_id=wallets[index].pk, credits="5", category="goodwill", reason="Sorry", now=utc(2026, 1, 6)
            ).pk
        ),
        count=4,
    )

    changes = list(PrepaidStatusChange.objects.order_by("id").values_list("credits_exhausted", flat=True))
    assert changes == [True, False]
