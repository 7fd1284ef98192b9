"""DreamComp (docs/rules/dreamcomp.md): batch 1-winner-take-all with reconstruction weights."""
