"""Which env files a process reads, and the lake locations they set (see :mod:`jobs.settings`).

Part of the settings: like the rest of the package, the only code that reads the environment
for configuration.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_ENV_FILE = "envs/local.env"
# The checkout holding this package: its envs/local.env is the default env file from any directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAKE_LOCATIONS = ("lake_raw", "lake_bronze", "lake_silver", "lake_gold", "lake_export")


def env_files(value: str | None = None) -> list[str]:
    """The files ``LAKEHOUSE_ENV_FILE`` names (a comma- or colon-separated list), in order."""
    raw = os.environ.get("LAKEHOUSE_ENV_FILE", DEFAULT_ENV_FILE) if value is None else value
    return [p.strip() for p in re.split(r"[,:]", raw or "") if p.strip()]


def env_file() -> str | tuple[str, ...] | None:
    """The env files to read, in order: those ``LAKEHOUSE_ENV_FILE`` names (each must exist),
    else the project's ``envs/local.env`` when present; an empty ``LAKEHOUSE_ENV_FILE`` means none."""
    from jobs.errors import ConfigError

    if os.environ.get("LAKEHOUSE_ENV_FILE") is None:
        default = PROJECT_ROOT / DEFAULT_ENV_FILE
        return str(default) if default.is_file() else None
    named = env_files()
    missing = [p for p in named if not Path(p).is_file()]
    if missing:
        raise ConfigError(
            f"env file {', '.join(missing)} not found (LAKEHOUSE_ENV_FILE): check "
            "the path, or unset it to use the defaults"
        )
    if not named:
        return None
    return named[0] if len(named) == 1 else tuple(named)


def lake_locations(files: str | tuple[str, ...] | None) -> dict[str, str]:
    """The lake locations the env ``files`` set, a relative one resolved against the folder of
    the file that sets it (a later file winning), unless the real environment sets it."""
    from dotenv import dotenv_values

    found: dict[str, str] = {}
    for path in (files,) if isinstance(files, str) else files or ():
        for key, value in dotenv_values(path).items():
            name = key.lower()
            if name in LAKE_LOCATIONS:
                value = (value or "").strip()
                relative = value and "://" not in value and not Path(value).expanduser().is_absolute()
                found[name] = str(Path(path).resolve().parent / value) if relative else value
    in_environment = {k.lower() for k in os.environ}
    return {k: v for k, v in found.items() if k not in in_environment}
