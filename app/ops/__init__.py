"""Operator tooling behind the CLI: CSV import and export, reports."""
