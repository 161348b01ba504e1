"""S1, central side: collecting consumer artifacts over the REST API, and the ingest gate that
accepts or quarantines them."""
