"""The Markdown parser under test: targets, adversarial corpora, and the performance baseline."""
