"""The one family of Feedline errors, so callers can tell our failures from library ones."""


class FeedlineError(Exception):
    """Base of every error Feedline raises on purpose."""


class ConfigError(FeedlineError):
    """A setting in the environment is malformed."""


class StackError(FeedlineError):
    """A local service could not be installed, started or reached (names service and log)."""

    def __init__(self, service: str, cause: str, log: str | None = None):
        self.service = service
        self.cause = cause
        self.log = log
        where = f" (log: {log})" if log else ""
        super().__init__(f"{service}: {cause}{where}")


class MigrationError(FeedlineError):
    """A schema migration could not be applied."""


class DependencyUnavailable(FeedlineError):
    """A backing service (PostgreSQL, Cassandra, Redis, Kafka) is down or unreachable."""

    def __init__(self, dependency: str, cause: str = ""):
        self.dependency = dependency
        super().__init__(f"{dependency} unavailable: {cause}" if cause else dependency)


class BadCursor(FeedlineError):
    """A pagination cursor is malformed, forged, or was issued for another list."""


class NotFound(FeedlineError):
    """The object a read names (a user, a shard) does not exist."""

    def __init__(self, kind: str, id_: int):
        self.kind = kind
        self.id = id_
        super().__init__(f"no {kind} {id_}")


class BadNotice(FeedlineError):
    """A message on the feed-notice channel that is not a notice (listeners skip it)."""


class AdaptError(FeedlineError):
    """A change event cannot be turned into mutations (malformed or unknown): a poison event."""


class SupervisorEscalation(FeedlineError):
    """A supervisor exceeded its restart intensity and gives up to its parent."""
