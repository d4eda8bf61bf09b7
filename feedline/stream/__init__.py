"""The live feed stream: ``GET /v1/feed/stream`` over Server-Sent Events (its own process)."""
