"""Dunning emails: reminders before and after the due date and the final notice, in plain text and
HTML (templates under templates/payments/email/), to the customer's email and its billing contacts
that receive invoices. Sent through Django's email backend (the console in development)."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.translation import gettext

from apps.accounts.constants import CollectionMethod
from apps.accounts.selectors import customer_invoice_recipients
from apps.core.errors import ValidationFailed

from .constants import DunningEndAction
from .schedule import ActionKind, PlannedAction
from .selectors import invoice_card_refusal

TEMPLATES = {
    ActionKind.REMINDER_BEFORE_DUE: "payments/email/dunning_reminder_before_due",
    ActionKind.REMINDER_AFTER_DUE: "payments/email/dunning_reminder_after_due",
    ActionKind.FINAL_NOTICE: "payments/email/dunning_final_notice",
}
END_ACTION_TEXT = {
    DunningEndAction.MARK_UNCOLLECTIBLE: "the invoice will be written off as uncollectible and your account reviewed",
    DunningEndAction.CANCEL_SUBSCRIPTION: "your subscription will be canceled",
    DunningEndAction.PAUSE_SUBSCRIPTION: "your subscription will be paused",
}


def dunning_email_subject(*, kind: ActionKind, invoice_number: str, seller: str) -> str:
    if kind == ActionKind.REMINDER_BEFORE_DUE:
        return f"Reminder: invoice {invoice_number} from {seller} is due soon"
    if kind == ActionKind.REMINDER_AFTER_DUE:
        return f"Overdue: invoice {invoice_number} from {seller}"
    return f"Final notice: invoice {invoice_number} from {seller}"


def dunning_email_message(*, dunning: Any, action: PlannedAction, recipients: list[str]) -> EmailMultiAlternatives:
    invoice = dunning.invoice
    seller = invoice.seller_details or settings.SELLER
    plan = dunning.plan
    next_retry_at = next(
        (datetime.fromisoformat(entry["at"]) for entry in plan[action.step + 1 :] if entry["kind"] == ActionKind.RETRY),
        None,
    )
    end_action_at = next(
        (datetime.fromisoformat(entry["at"]) for entry in plan if entry["kind"] == ActionKind.END_ACTION), None
    )
    subject = dunning_email_subject(kind=action.kind, invoice_number=invoice.number, seller=seller.get("name", ""))
    context = {
        "subject": subject,
        "invoice": invoice,
        "seller": seller,
        "buyer": invoice.customer_details,
        "amount_due": invoice.amount_due,
        # A card cannot be charged this amount (`amount_not_chargeable`): the reminder says how else to pay.
        "pays_by_card": invoice.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY
        and invoice_card_refusal(invoice) is None,
        "next_retry_at": next_retry_at,
        "end_action_at": end_action_at,
        "end_action_text": END_ACTION_TEXT[DunningEndAction(dunning.campaign_rules["end_action"])],
    }
    template = TEMPLATES[action.kind]
    seller_email = seller.get("email")
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=[seller_email] if seller_email else None,
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def dunning_email_send(*, dunning: Any, action: PlannedAction, now: datetime) -> dict[str, Any]:
    """Send the action's email (the caller holds the dunning's lock and records the step). Raises when
    the customer has no address or the mail server refuses: nothing is recorded then."""
    recipients = customer_invoice_recipients(dunning.invoice.customer)
    if not recipients:
        raise ValidationFailed(
            gettext("Customer %(customer)s has no email address.") % {"customer": dunning.invoice.customer}
        )
    message = dunning_email_message(dunning=dunning, action=action, recipients=recipients)
    message.send(fail_silently=False)
    return {"recipients": recipients, "subject": message.subject}
