"""The test suite, a package: helpers are imported as `tests.helpers.X` (pytest runs from the repository root)."""
