"""The shared core every gate uses: errors and exit codes, settings, signing,
file I/O, subprocesses, redaction, metrics, the GitHub client and runner I/O.

Each piece exists once, here; gates import from these modules instead of
re-implementing them."""
