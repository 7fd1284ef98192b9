"""Krotov-Hopfield competing hidden units (docs/rules/krotov_hopfield.md)."""
