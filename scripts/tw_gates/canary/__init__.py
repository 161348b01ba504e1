"""The 48-hour canary: sources, the decision, and the dashboard issue."""
