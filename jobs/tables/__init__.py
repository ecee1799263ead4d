"""Lake tables: reading and writing (:mod:`.lake`), files committed in one transaction
(:mod:`.external`), and the deltalake thread workaround (:mod:`.threads`)."""

from jobs.storage.errors import storage_error
from jobs.tables.lake import Lake

__all__ = ["Lake", "storage_error"]
