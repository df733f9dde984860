"""`deepfrack optimize` and `deepfrack evaluate` (filled in with the search)."""
