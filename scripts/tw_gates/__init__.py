"""tw-gates: GitHub Actions-native security gates for the Token Warehouse."""

__version__ = "0.1.0"
