from decimal import Decimal

from djmoney.money import Money

from apps.accounts.models import Customer
from apps.invoices.constants import InvoiceLineKind
from apps.invoices.models import InvoiceItem
from apps.wallets.models import Wallet
from apps.wallets.services.ledger import wallet_create


def make_wallet(customer: Customer, name: str = "Main", rate: str = "1.00", priority: int = 100, **kwargs) -> Wallet:
    return wallet_create(customer=customer, name=name, rate=Decimal(rate), priority=priority, **kwargs)


def money_balance_credit(customer: Customer, amount: str, *, created_at) -> InvoiceItem:
    """A credit waiting on the customer's money balance (an overpayment), as payments writes it."""
    return InvoiceItem.objects.create(
        customer=customer, subscription=None, kind=InvoiceLineKind.PAYMENT_CREDIT, description="Credit from payment",
        quantity=Decimal(1), amount=Money(-Decimal(amount), customer.currency), created_at=created_at,
    )  # fmt: skip
