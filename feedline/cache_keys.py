"""Every Redis key Feedline uses, in one place, so writers and readers cannot drift apart.

The read path caches first pages and hydrated objects under these keys; the pipeline's
cache invalidators delete them when a change makes them stale.
"""

PREFIX = "fl:"


def feed(user_id: int) -> str:
    """First page(s) of a user's home feed (shard ids + cursor positions)."""
    return f"{PREFIX}feed:{user_id}"


def pull_sources(user_id: int) -> str:
    """The pull authors a user's feed merges in, with when the user followed each."""
    return f"{PREFIX}pull:{user_id}"


def user_shards(author_id: int) -> str:
    """First page of the shards a user wrote."""
    return f"{PREFIX}shards:{author_id}"


def shard(shard_id: int) -> str:
    """A hydrated shard: body, author, counts."""
    return f"{PREFIX}shard:{shard_id}"


def user(user_id: int) -> str:
    """A hydrated profile: handle and counts."""
    return f"{PREFIX}user:{user_id}"


def comments(shard_id: int) -> str:
    """First page of a shard's comments."""
    return f"{PREFIX}comments:{shard_id}"


def followers(user_id: int) -> str:
    """First page of a user's followers."""
    return f"{PREFIX}followers:{user_id}"


def following(user_id: int) -> str:
    """First page of the users a user follows."""
    return f"{PREFIX}following:{user_id}"


# Keys the invalidator could not delete while Redis was down; flushed on recovery.
PENDING_INVALIDATIONS = f"{PREFIX}pending-invalidations"
