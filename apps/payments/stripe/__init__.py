"""Card collection through Stripe (dj-stripe at the edge): our invoices stay the source of truth and
Stripe only collects PaymentIntents. See docs/payments.md."""
