"""The local object store for development: SeaweedFS ``weed mini`` (:mod:`.weed`), the lake's
grants as SeaweedFS identities and MinIO policies (:mod:`.identities`), buckets and raw uploads
(:mod:`.seed`), and the commands ``python -m infra.stack up|down|status|seed``."""
