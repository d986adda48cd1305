"""What to do: pure decisions over entries (no store, no transfer)."""
