"""Stripe customers and their cards: created lazily, cards added through SetupIntents.

The portal (and staff) add a card in two steps: `stripe_setup_intent_create` gives the browser a
client secret, Stripe.js confirms the SetupIntent with the card (3-D Secure included, in the
browser), and `stripe_payment_method_attach` records the confirmed card on the customer. Stripe
stays the store of cards; dj-stripe's `Customer` and `PaymentMethod` rows are refreshed from it on
every change so the admin can show them without a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from django.db import transaction
from django.utils.translation import gettext
from djstripe import models as djstripe_models

from apps.accounts.models import Customer
from apps.core.errors import NotFound, ValidationFailed
from apps.payments.failures import stripe_status_text

from .client import as_dict, object_id, raise_as_application_error, request_options
from .models import StripeCustomer


@dataclass(frozen=True)
class CardSummary:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    created_at: datetime | None = None  # when the card was added (Stripe's `created`)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "is_default": self.is_default,
        }


def _sync_customer(data: Any) -> djstripe_models.Customer:
    return djstripe_models.Customer.sync_from_stripe_data(data, api_key=request_options()["api_key"])


def stripe_customer_get(*, customer_id: int) -> StripeCustomer | None:
    return StripeCustomer.objects.select_related("djstripe_customer").filter(customer_id=customer_id).first()


@transaction.atomic
def stripe_customer_ensure(*, customer_id: int) -> StripeCustomer:
    """The customer's Stripe customer, created on first use. The customer row is locked meanwhile, and
    the create request carries an idempotency key of the customer's, so neither two requests at once
    nor a retry after a lost answer make a second Stripe customer."""
    try:
        customer = Customer.objects.select_for_update().get(pk=customer_id)
    except Customer.DoesNotExist:
        raise NotFound(gettext("Customer %(customer_id)s does not exist.") % {"customer_id": customer_id}) from None
    existing = stripe_customer_get(customer_id=customer.pk)
    if existing is not None:
        return existing
    options = request_options(idempotency_key=f"customer-{customer.pk}-create")
    try:
        data = stripe.Customer.create(
            email=customer.email,
            name=customer.name,
            metadata={"billing_customer_id": str(customer.pk)},
            **options,
        )
    except stripe.StripeError as error:
        raise_as_application_error(error)
    djstripe_customer = _sync_customer(data)
    return StripeCustomer.objects.create(customer=customer, djstripe_customer=djstripe_customer)


def stripe_setup_intent_create(*, customer_id: int) -> dict[str, str]:
    """A SetupIntent for adding a card the customer can be charged with later (off session)."""
    link = stripe_customer_ensure(customer_id=customer_id)
    try:
        intent = stripe.SetupIntent.create(
            customer=link.stripe_customer_id,
            usage="off_session",
            payment_method_types=["card"],
            metadata={"billing_customer_id": str(customer_id)},
            **request_options(),
        )
    except stripe.StripeError as error:
        raise_as_application_error(error)
    return {"id": str(intent["id"]), "client_secret": str(intent["client_secret"])}


def _card(data: Any, default_id: str | None) -> CardSummary:
    card = data["card"]
    return CardSummary(
        id=str(data["id"]),
        brand=str(card["brand"]),
        last4=str(card["last4"]),
        exp_month=int(card["exp_month"]),
        exp_year=int(card["exp_year"]),
        is_default=data["id"] == default_id,
        created_at=datetime.fromtimestamp(int(data["created"]), tz=UTC) if data.get("created") else None,
    )


def _retrieve_owned_payment_method(link: StripeCustomer, payment_method_id: str) -> Any:
    """The payment method, if it is attached to this customer: someone else's card is "not found"."""
    data: dict[str, Any] | None = None
    try:
        data = as_dict(stripe.PaymentMethod.retrieve(payment_method_id, **request_options()))
    except stripe.InvalidRequestError:
        data = None
    except stripe.StripeError as error:
        raise_as_application_error(error)
    if data is None or object_id(data.get("customer")) != link.stripe_customer_id:
        raise NotFound(
            gettext("No payment method %(payment_method_id)s on this customer.")
            % {"payment_method_id": payment_method_id},
            fields={"payment_method": [gettext("Not found.")]},
        )
    return data


def _set_default(link: StripeCustomer, payment_method_id: str) -> None:
    try:
        data = stripe.Customer.modify(
            link.stripe_customer_id,
            invoice_settings={"default_payment_method": payment_method_id},
            **request_options(),
        )
    except stripe.StripeError as error:
        raise_as_application_error(error)
    link.djstripe_customer = _sync_customer(data)


def stripe_payment_method_attach(*, customer_id: int, setup_intent_id: str, make_default: bool = False) -> CardSummary:
    """Record the card of a confirmed SetupIntent on the customer. The customer's first card becomes
    its default (the card charged for `charge_automatically` invoices), and so does any card added
    with `make_default`."""
    link = stripe_customer_ensure(customer_id=customer_id)
    intent: dict[str, Any] | None = None
    try:
        intent = as_dict(stripe.SetupIntent.retrieve(setup_intent_id, **request_options()))
    except stripe.InvalidRequestError:
        intent = None
    except stripe.StripeError as error:
        raise_as_application_error(error)
    if intent is None or object_id(intent.get("customer")) != link.stripe_customer_id:
        raise NotFound(
            gettext("No setup intent %(setup_intent_id)s for this customer.") % {"setup_intent_id": setup_intent_id},
            fields={"setup_intent": [gettext("Not found.")]},
        )
    if intent["status"] != "succeeded":
        raise ValidationFailed(
            gettext("The card is not confirmed yet."),
            fields={
                "setup_intent": [
                    gettext("The card is not confirmed yet (%(status)s).")
                    % {"status": stripe_status_text(intent["status"])}
                ]
            },
        )
    payment_method_id = object_id(intent["payment_method"])
    assert payment_method_id is not None
    try:
        data = as_dict(stripe.PaymentMethod.retrieve(payment_method_id, **request_options()))
        if object_id(data.get("customer")) != link.stripe_customer_id:
            data = as_dict(
                stripe.PaymentMethod.attach(payment_method_id, customer=link.stripe_customer_id, **request_options())
            )
    except stripe.StripeError as error:
        raise_as_application_error(error)
    djstripe_models.PaymentMethod.sync_from_stripe_data(data, api_key=request_options()["api_key"])
    if make_default or not link.default_payment_method_id:
        _set_default(link, payment_method_id)
    return _card(data, link.default_payment_method_id)


def stripe_payment_methods_list(*, customer_id: int) -> list[CardSummary]:
    """The customer's cards, default first (none before its Stripe customer exists)."""
    link = stripe_customer_get(customer_id=customer_id)
    if link is None:
        return []
    try:
        listed = stripe.PaymentMethod.list(customer=link.stripe_customer_id, type="card", **request_options())
    except stripe.StripeError as error:
        raise_as_application_error(error)
    default_id = link.default_payment_method_id
    cards = [_card(data, default_id) for data in as_dict(listed)["data"]]
    return sorted(cards, key=lambda card: (not card.is_default, card.id))


def stripe_payment_method_set_default(*, customer_id: int, payment_method_id: str) -> CardSummary:
    link = stripe_customer_get(customer_id=customer_id)
    if link is None:
        raise NotFound(gettext("This customer has no cards."), fields={"payment_method": [gettext("Not found.")]})
    data = _retrieve_owned_payment_method(link, payment_method_id)
    _set_default(link, payment_method_id)
    return _card(data, link.default_payment_method_id)


def stripe_payment_method_detach(*, customer_id: int, payment_method_id: str) -> None:
    """Remove a card. When it was the default, the customer is left without one (Stripe clears it
    too) until another card is made the default."""
    link = stripe_customer_get(customer_id=customer_id)
    if link is None:
        raise NotFound(gettext("This customer has no cards."), fields={"payment_method": [gettext("Not found.")]})
    _retrieve_owned_payment_method(link, payment_method_id)
    try:
        data = stripe.PaymentMethod.detach(payment_method_id, **request_options())
        if link.default_payment_method_id == payment_method_id:
            customer = stripe.Customer.modify(
                link.stripe_customer_id, invoice_settings={"default_payment_method": ""}, **request_options()
            )
            link.djstripe_customer = _sync_customer(customer)
    except stripe.StripeError as error:
        raise_as_application_error(error)
    djstripe_models.PaymentMethod.sync_from_stripe_data(data, api_key=request_options()["api_key"])
