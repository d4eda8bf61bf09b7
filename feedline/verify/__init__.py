"""Check the read model against PostgreSQL, the source of truth (``feedline verify``).

``model`` says what a difference is and how two partitions are compared (pure);
``source`` computes what each read-model partition should hold from one consistent
PostgreSQL snapshot; ``feedline.readmodel.partitions`` reads what Cassandra holds (the
read model's own CQL, ``feedline.readmodel.queries``); ``cache`` checks Redis with the
read model's own formats;
``runner`` ties them together for scoped and whole-database runs. ``feedline rebuild``
(:mod:`feedline.rebuild`) reuses the same expectation to repair what differs.
"""

from feedline.verify.model import Difference, Report
from feedline.verify.runner import verify, verify_until_clean

__all__ = ["Difference", "Report", "verify", "verify_until_clean"]
