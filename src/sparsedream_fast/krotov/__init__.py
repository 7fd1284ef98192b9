"""Krotov-Hopfield competing hidden units (ALGORITHMS.md part C)."""
