"""Test-only helpers: tiny reward-head training runs, a toy regressor, a headless browser, the DDP worker."""
