"""Voucher claims (claims.md): filing, review, disbursement and the event chain."""
