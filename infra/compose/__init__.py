"""The docker compose deployment's tooling: its secrets file, image digests and static rules."""
