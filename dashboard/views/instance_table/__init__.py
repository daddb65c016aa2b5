"""The instance table view: everything pure about it (its slice of the cache, figures, run-time markup)."""
