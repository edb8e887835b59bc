"""What changes wallets: the ledger (grants, voids), expiry, consumption at finalization, purchases
and automatic top-ups."""
