"""Prepaid credit wallets: credits a customer buys or is granted, kept in an append-only ledger and
consumed by its invoices at finalization (docs/credits.md)."""
