"""tw-gates demo: the whole story on the bundled example consumer, offline."""
