"""The central repository's gate chain: R2 platform, G1 verify-nets, G2 behavioral, G3
audit, G4 hmac-policy, G5 telemetry-check, and the runner that chains them."""
