"""S2 and R1: findings from the audit filed as capped, never-duplicated issues, with the permission fallback."""
