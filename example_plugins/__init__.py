"""Example plugins kept outside the package: a strategy, a benchmark, an encoder (see CONTRIBUTING.md)."""
