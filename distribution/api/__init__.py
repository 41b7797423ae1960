"""HTTP API: one Flask blueprint per area of the Distribution API."""
