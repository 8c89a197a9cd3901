"""Path-engine tests are pure core tests: no network, no Django, no services."""
