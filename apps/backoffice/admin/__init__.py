"""The admin pages that combine several apps. Each domain app's own admin.py registers the pages that
need nothing above it; the pages here compose them (a customer with its invoices, payments, usage and
Stripe card; an invoice with its payments and card collection; a subscription with its plan changes and
invoices), so that no app reaches upward or patches another app's admin classes."""

from . import credit_notes, customers, invoice_items, invoices, schedule, subscriptions  # noqa: F401 - registers the pages
