"""Silver: typed, clean event tables partitioned by day, built incrementally from bronze."""
