"""Read the Cassandra read model and its Redis cache, for the web, verify and rebuild alike.

The read model's formats (cache entry kinds, list windows, the shard and user JSON), its
CQL, the Cassandra read store, the Redis cache with its per-worker near cache, the cursor
codec and ``ReadModel`` (pages and hydrated objects) live here, not in the web layer, so
``feedline verify`` and ``rebuild`` read and decode exactly what the API serves.

Nothing here imports ``feedline.http`` or falcon (tests/unit/readmodel/test_layering.py):
failures are plain ``feedline.errors`` (``BadCursor``, ``NotFound``,
``DependencyUnavailable``) that ``feedline.http.error_handlers`` maps to HTTP.

- ``formats``: entry kinds, windows and their encodings, list specs, object JSON, times;
- ``queries``: every read's CQL, derived from ``feedline.statements.TABLES``;
- ``store``: the web's lazy Cassandra session; ``partitions``: verify and rebuild's;
- ``cache`` and ``near_cache``: Redis with leases and a breaker, per-worker copies;
- ``cursor``: signed pagination cursors; ``model``: ``ReadModel``, pages and objects.
"""
