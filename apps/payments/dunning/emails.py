"""Dunning emails: reminders before and after the due date and the final notice, in plain text and
HTML (templates under templates/payments/email/), to the customer's email and its billing contacts
that receive invoices. Sent through Django's email backend (the console in development)."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string, select_template
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from apps.accounts.constants import CollectionMethod
from apps.accounts.selectors import customer_invoice_recipients
from apps.core.errors import ValidationFailed
from apps.invoices.services.pdf import document_language

from .constants import DunningEndAction
from .schedule import ActionKind, PlannedAction
from .selectors import invoice_card_refusal

TEMPLATES = {
    ActionKind.REMINDER_BEFORE_DUE: "payments/email/dunning_reminder_before_due",
    ActionKind.REMINDER_AFTER_DUE: "payments/email/dunning_reminder_after_due",
    ActionKind.FINAL_NOTICE: "payments/email/dunning_final_notice",
}
END_ACTION_TEXT = {
    DunningEndAction.MARK_UNCOLLECTIBLE: gettext_lazy(
        "the invoice will be written off as uncollectible and your account reviewed"
    ),
    DunningEndAction.CANCEL_SUBSCRIPTION: gettext_lazy("your subscription will be canceled"),
    DunningEndAction.PAUSE_SUBSCRIPTION: gettext_lazy("your subscription will be paused"),
}


def dunning_email_subject(*, kind: ActionKind, invoice_number: str, seller: str) -> str:
    """The subject, in the language active (the customer's, see `dunning_email_message`)."""
    if kind == ActionKind.REMINDER_BEFORE_DUE:
        message = gettext("Reminder: invoice %(number)s from %(seller)s is due soon")
    elif kind == ActionKind.REMINDER_AFTER_DUE:
        message = gettext("Overdue: invoice %(number)s from %(seller)s")
    else:
        message = gettext("Final notice: invoice %(number)s from %(seller)s")
    return message % {"number": invoice_number, "seller": seller}


def _template(name: str, language: str, extension: str) -> str:
    """The email's template in the customer's language (English when there is none)."""
    return select_template([f"{name}.{language}.{extension}", f"{name}.{extension}"]).template.name


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
    # Written in the language of the customer's bills, like the invoice it is about.
    language = document_language(invoice.customer_details or {})
    with translation.override(language):
        return _dunning_email_message(
            dunning=dunning, action=action, recipients=recipients, language=language,
            seller=seller, next_retry_at=next_retry_at, end_action_at=end_action_at,
        )  # fmt: skip


def _dunning_email_message(
    *, dunning: Any, action: PlannedAction, recipients: list[str], language: str, seller: dict,
    next_retry_at: datetime | None, end_action_at: datetime | None,
) -> EmailMultiAlternatives:  # fmt: skip
    invoice = dunning.invoice
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
        "end_action_text": str(END_ACTION_TEXT[DunningEndAction(dunning.campaign_rules["end_action"])]),
    }
    template = TEMPLATES[action.kind]
    seller_email = seller.get("email")
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(_template(template, language, "txt"), context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=[seller_email] if seller_email else None,
    )
    message.attach_alternative(render_to_string(_template(template, language, "html"), context), "text/html")
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
