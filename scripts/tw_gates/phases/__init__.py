"""Phase unlocks: verify and complete, the evidence log, and template rendering."""
