"""Example strategy plugins kept outside the package (see CONTRIBUTING.md)."""
