"""Evidence files for voucher claims (claims.md "Evidence")."""
