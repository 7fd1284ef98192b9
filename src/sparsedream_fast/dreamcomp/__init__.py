"""DreamComp (ALGORITHMS.md part B): batch 1-winner-take-all with reconstruction weights."""
