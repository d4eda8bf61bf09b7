"""Read the Cassandra read model and its Redis cache, for the web, verify and rebuild alike.

The read model's formats (cache entry kinds, list windows, the shard and user JSON), its
CQL, the Cassandra read store, the Redis cache with its per-worker near cache, the cursor
codec and ``ReadModel`` (pages and hydrated objects) live here, not in the web layer, so
``feedline verify`` and ``rebuild`` read and decode exactly what the API serves.
"""
