"""An event's data as staff read it (invoice, subscription and payment history, the audit trail page).

The stored data stays as written (raw JSON in the CSV export, the API and webhooks); this module only
renders it: each known key by a translated label (an unknown key falls back to the key in words),
moments in the reader's time zone and language, amounts with their currency by the product's money
formatter, choice values (method, reason, status, …) by their labels, and the known English notes and
reasons services store by their translation.
"""

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from apps.core.datetime_format import staff_datetime
from apps.core.money_format import money_text

# The keys of InvoiceEvent, SubscriptionEvent and PaymentEvent data, by label.
KEY_LABELS = {
    "actor": _("actor"),
    "allocations": _("allocations"),
    "amount_due": _("amount due"),
    "amount": _("amount"),
    "at_period_end": _("at period end"),
    "bytes": _("size (bytes)"),
    "campaign": _("campaign"),
    "charge": _("charge"),
    "charge_id": _("charge ID"),
    "credit_note": _("credit note"),
    "credited_to_balance": _("credited to the balance"),
    "currency": _("currency"),
    "ended_at": _("ended at"),
    "ends_at": _("ends at"),
    "error": _("error"),
    "every": _("every"),
    "failure_code": _("failure code"),
    "failure_message": _("failure message"),
    "file": _("file"),
    "from": _("from"),
    "from_version": _("from version"),
    "immediately": _("immediately"),
    "invoice": _("invoice"),
    "invoice_item": _("invoice item"),
    "lines": _("lines"),
    "method": _("payment method"),
    "new_anchor_at": _("new billing anchor"),
    "next_action_url": _("next action URL"),
    "note": _("note"),
    "number": _("number"),
    "paused_at": _("paused at"),
    "payment": _("payment"),
    "pdf_sha256": _("PDF SHA-256"),
    "period_end": _("period end"),
    "period_start": _("period start"),
    "price": _("price"),
    "provider": _("provider"),
    "provider_payment_id": _("provider payment ID"),
    "reason": _("reason"),
    "received_at": _("received at"),
    "recipients": _("recipients"),
    "reference": _("reference"),
    "refund": _("refund"),
    "scheduled_change": _("scheduled change"),
    "sha256": _("SHA-256"),
    "status": _("status"),
    "subject": _("subject"),
    "subscription": _("subscription"),
    "subscriptions": _("subscriptions"),
    "thresholds": _("thresholds"),
    "timing": _("timing"),
    "to": _("to"),
    "to_version": _("to version"),
    "total": _("total"),
    "trial_end_at": _("trial end"),
}

# Keys whose value is an amount in the data's "currency".
AMOUNT_KEYS = frozenset({"amount", "total", "credited_to_balance", "proration_total"})

# The English texts services store as a reason or note; shown translated.
KNOWN_TEXTS = (
    gettext_noop("The provider took the money after the payment was canceled here."),
    gettext_noop("zero amount"),
    gettext_noop("credited in full"),
    gettext_noop("below zero: credited to the balance"),
    gettext_noop("invoice reopened"),
    gettext_noop("invoice voided"),
    gettext_noop("customer excluded from dunning"),
    gettext_noop("excluded by staff"),
    gettext_noop("its moment had passed when dunning started"),
    gettext_noop("a later step was due already"),
    gettext_noop("the invoice is paid by transfer, not by card"),
    gettext_noop("card payments are not enabled"),
)
# The stored texts with a value in them: (pattern, the translatable sentence with the value by name).
KNOWN_PATTERNS = (
    (re.compile(r"^PaymentIntent (?P<id>\S+) was canceled\.$"), gettext_noop("PaymentIntent %(id)s was canceled.")),
    (re.compile(r"^Invoice (?P<invoice>\S+) is unpaid\.$"), gettext_noop("Invoice %(invoice)s is unpaid.")),
    (re.compile(r"^Invoice (?P<invoice>\S+) is paid\.$"), gettext_noop("Invoice %(invoice)s is paid.")),
    (
        re.compile(r"^Invoice (?P<invoice>\S+) unpaid after dunning\.$"),
        gettext_noop("Invoice %(invoice)s unpaid after dunning."),
    ),
    (
        re.compile(r"^the amount due cannot be charged by card: (?P<refusal>.+)$", re.DOTALL),
        gettext_noop("the amount due cannot be charged by card: %(refusal)s"),
    ),
)
TRANSLATED_KEYS = frozenset({"reason", "note"})

_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_EMPTY = (None, "", {}, [])


# Which choices name a value of a key of event data ("method", "reason", "status"…): registered by the
# apps that own them (their constants modules), since apps.core imports no app.
_CHOICES: dict[str, list] = {}


def event_choices_register(key: str, *choices) -> None:
    """Name the values of `key` in event data by the labels of `choices` (the first registered wins
    where two choices share a value)."""
    known = _CHOICES.setdefault(key, [])
    known.extend(choice for choice in choices if choice not in known)


def _choices() -> dict[str, list]:
    return _CHOICES


def key_label(key: str) -> str:
    return capfirst(str(KEY_LABELS.get(key) or key.replace("_", " ")))


def _moment_text(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    local = timezone.localtime(moment)
    return f"{staff_datetime(local)} {local.tzname()}"


def stored_text(value: str) -> str:
    """A reason or note a service stored in English, in the reader's language when it is a known one."""
    for pattern, sentence in KNOWN_PATTERNS:
        match = pattern.match(value)
        if match:
            return gettext(sentence) % match.groupdict()
    return gettext(value) if value in KNOWN_TEXTS else value


def value_text(key: str, value: Any, data: dict) -> str:
    """One value of an event's data, for people."""
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, dict):
        return ", ".join(f"{key_label(k)} {value_text(k, v, data)}" for k, v in value.items() if v not in _EMPTY)
    if isinstance(value, list):
        return ", ".join(value_text(key, item, data) for item in value)
    if key in AMOUNT_KEYS and data.get("currency") and not isinstance(value, dict):
        try:
            return money_text(Decimal(str(value)), str(data["currency"]))
        except (InvalidOperation, ValueError, KeyError):
            pass
    if isinstance(value, str):
        if _MOMENT.match(value):
            moment = _moment_text(value)
            if moment:
                return moment
        for choices in _choices().get(key, []):
            if value in choices.values:
                return str(choices(value).label)
        if key in TRANSLATED_KEYS:
            return stored_text(value)
    return str(value)


def event_detail_items(data: dict | None) -> list[tuple[str, str]]:
    """(label, text) of each non-empty value; the currency goes with the amounts it qualifies."""
    data = data or {}
    with_amount = any(key in AMOUNT_KEYS for key in data)
    return [
        (key_label(key), value_text(key, value, data))
        for key, value in data.items()
        if value not in _EMPTY and not (key == "currency" and with_amount)
    ]


def event_details_text(data: dict | None) -> str:
    """ "Payment: 55, amount: €32.13, payment method: bank transfer" — or "—" for no data."""
    items = event_detail_items(data)
    pair = gettext("%(label)s: %(value)s")
    return gettext("; ").join(pair % {"label": label, "value": text} for label, text in items) or "—"
