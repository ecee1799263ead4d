"""Bronze: raw files parsed as landed, with lineage; bad lines quarantined with a reason."""
