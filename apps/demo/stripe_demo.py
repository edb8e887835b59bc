"""Card payments in the demo (`make run LOCALSTRIPE=1`): three demo customers add a card and have an
open invoice charged — one paid at once, one declined and then paid with a new card (failed, then
recovered), one waiting for 3-D Secure (the customer was emailed the pay link). Their next invoices
are charged automatically. Without a dunning campaign yet, a default one is made first, so that the
declined payment starts a dunning that the later payment recovers (Payments › Customers in dunning).

Cards are added the way the portal adds them, except that the SetupIntent is confirmed here rather
than by Stripe.js in a browser (only possible against test servers: raw test card numbers)."""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from django.conf import settings

from apps.accounts.constants import CollectionMethod
from apps.accounts.services import customer_update
from apps.demo.demo_data import DEMO_EXTERNAL_ID_PREFIX
from apps.invoices.constants import InvoiceStatus
from apps.invoices.models import Invoice
from apps.payments.dunning.models import DunningCampaign
from apps.payments.dunning.services import dunning_campaign_create
from apps.payments.models import Payment
from apps.payments.stripe.client import request_options
from apps.payments.stripe.collection import invoice_charge_now
from apps.payments.stripe.customers import stripe_payment_method_attach, stripe_setup_intent_create
from apps.payments.stripe.models import StripeCustomer

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"  # attaches, declined when charged
CARD_3DS = "4000002500003155"  # asks for 3-D Secure on every payment
DEMO_CAMPAIGN = {
    "name": "Standard (demo)",
    "description": "Made by the card demo data; change or replace it as you like.",
    "retry_days": [3, 5, 7],
    "reminder_days_before_due": [3],
    "reminder_days_after_due": [1, 7],
    "final_notice_day": 14,
    "end_action": "mark_uncollectible",
    "end_action_day": 21,
    "is_default": True,
}


@dataclass(frozen=True)
class StripeDemoSummary:
    created: bool
    payments: list[Payment]


def _add_card(customer_id: int, number: str, *, make_default: bool = False) -> None:
    intent = stripe_setup_intent_create(customer_id=customer_id)
    payment_method = stripe.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}, **request_options()
    )
    confirmed = stripe.SetupIntent.confirm(intent["id"], payment_method=payment_method["id"], **request_options())
    if confirmed["status"] == "requires_action":  # the customer passes 3-D Secure when saving the card
        stripe.SetupIntent.confirm(intent["id"], **request_options())
    stripe_payment_method_attach(customer_id=customer_id, setup_intent_id=intent["id"], make_default=make_default)
    # From now on their invoices are charged to the card when finalized.
    customer_update(customer_id=customer_id, collection_method=CollectionMethod.CHARGE_AUTOMATICALLY)


def stripe_demo_data_load() -> StripeDemoSummary:
    """Refuses to run against Stripe itself (`STRIPE_API_BASE` must point at a test server)."""
    if not settings.STRIPE_API_BASE:
        raise ValueError("Card demo data is for the local fake Stripe only (set STRIPE_API_BASE).")
    if StripeCustomer.objects.filter(customer__external_id__startswith=DEMO_EXTERNAL_ID_PREFIX).exists():
        return StripeDemoSummary(created=False, payments=[])
    open_invoices = (
        Invoice.objects.filter(customer__external_id__startswith=DEMO_EXTERNAL_ID_PREFIX, status=InvoiceStatus.OPEN)
        .select_related("customer")
        .order_by("-issued_at", "-pk")
    )
    chosen: list[Invoice] = []
    for invoice in open_invoices:
        if invoice.customer_id not in {c.customer_id for c in chosen} and invoice.amount_due.amount > 0:
            chosen.append(invoice)
        if len(chosen) == 3:
            break
    if not DunningCampaign.objects.filter(is_default=True).exists():
        dunning_campaign_create(**DEMO_CAMPAIGN)
    payments: list[Payment] = []
    if len(chosen) > 0:  # paid by card at once
        _add_card(chosen[0].customer_id, CARD_OK)
        payments.append(invoice_charge_now(invoice_id=chosen[0].pk))
    if len(chosen) > 1:  # declined, then paid after the customer added another card
        _add_card(chosen[1].customer_id, CARD_DECLINED)
        payments.append(invoice_charge_now(invoice_id=chosen[1].pk))
        _add_card(chosen[1].customer_id, CARD_OK, make_default=True)
        payments.append(invoice_charge_now(invoice_id=chosen[1].pk))
    if len(chosen) > 2:  # waits for the customer's 3-D Secure
        _add_card(chosen[2].customer_id, CARD_3DS)
        payments.append(invoice_charge_now(invoice_id=chosen[2].pk))
    return StripeDemoSummary(created=True, payments=payments)
