"""One module per lifecycle operation: orchestration only (no CLI text, no vendors)."""
