"""S1, consumer side: the self-audit that scans a consumer repository for renderer
patterns and writes its signed artifact."""
