"""The native stack's settings: the product settings plus where the stack lives and its ports.

Read from the same environment and env files as :class:`jobs.settings.Settings` (``envs/stack.env``
names them): ``python -m infra.stack`` and the tests of the stack load
:class:`StackSettings`; the product never sees these fields.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator

from jobs.settings import Settings, is_loopback, load_as


class StackSettings(Settings):
    """Local object store without Docker (``make stack-up``): SeaweedFS ``weed mini`` on 127.0.0.1."""

    # Where the stack keeps its data, PID, log, identities and key files (git-ignored).
    stack_dir: str = ".stack"
    # Its S3 port is the one in AWS_ENDPOINT_URL; every other port is given here explicitly.
    stack_master_port: int = 19333
    stack_master_grpc_port: int = 29333
    stack_volume_port: int = 19340
    stack_volume_grpc_port: int = 29340
    stack_filer_port: int = 18888
    stack_filer_grpc_port: int = 28888
    stack_s3_grpc_port: int = 28333
    # The admin server's gRPC port is this + 10000 (weed's built-in worker assumes that offset).
    stack_admin_port: int = 13646
    # The bucket console (`weed admin` with a login, infra/stack/console.py); its worker gRPC port
    # is this + 10000 too.
    stack_console_port: int = 13650
    # A second copy of the local stack on this machine: every STACK_*_PORT above and the port of
    # a loopback AWS_ENDPOINT_URL move by this much (and Airflow's ports, infra/airflow), and
    # STACK_DIR defaults to .stack-<offset>. Applied once when the settings load: the fields then
    # hold the ports in use, and this reads 0.
    stack_port_offset: int = Field(default=0, ge=0, le=20_000)

    @model_validator(mode="before")
    @classmethod
    def _shift_stack_ports(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        offset = int(data.get("stack_port_offset") or 0)
        if not offset:
            return data
        shifted = {**data, "stack_port_offset": 0}
        home = cls.model_fields["stack_dir"].default
        if data.get("stack_dir", home) == home:  # the default (envs/stack.env names it too)
            shifted["stack_dir"] = f"{home}-{offset}"
        for name in STACK_PORTS:
            shifted[name] = int(data.get(name, cls.model_fields[name].default)) + offset
        endpoint = data.get("aws_endpoint_url")
        if endpoint and is_loopback(str(endpoint)):
            shifted["aws_endpoint_url"] = shift_port(str(endpoint), offset)
        return shifted


STACK_PORTS = (
    "stack_master_port",
    "stack_master_grpc_port",
    "stack_volume_port",
    "stack_volume_grpc_port",
    "stack_filer_port",
    "stack_filer_grpc_port",
    "stack_s3_grpc_port",
    "stack_admin_port",
    "stack_console_port",
)


def shift_port(url: str, offset: int) -> str:
    """``url`` with its port moved by ``offset`` (the scheme's default port if it names none)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{host}:{port + offset}"))


def load_stack_settings(**overrides: object) -> StackSettings:
    """:class:`StackSettings` from the environment and env files, as ``load_settings`` builds
    the product's (one line naming the bad value when one is wrong)."""
    return load_as(StackSettings, **overrides)
