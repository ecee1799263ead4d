"""The rules a compose file must keep to be deployable, checked statically (no Docker here).

``tests/infra/test_compose_rules.py`` runs each rule on the real file and on a variant built
to break it; ``make audit`` runs them all (:func:`check_repository`).

- **secrets**: every secret is a required override ``${VAR:?message}`` (no literal, no
  default), and no env file a service reads holds a secret-named variable;
- **scope**: each service names only the secrets :data:`SECRET_GRANTS` gives it (MinIO's root
  keys reach minio and minio-init only, the UI password airflow-init only, ...);
- **ports**: whatever is published is bound to the host's loopback;
- **dask**: every Dask connection is mutual TLS (``tls://``, encryption required); the
  scheduler publishes nothing, sits on internal networks shared with the Dask services only,
  holds no secret, and scheduler and workers have health checks;
- **images**: every pulled image is pinned by digest or allow-listed with a reason
  (:mod:`infra.compose.pin`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from infra.compose import pin

INFRA = Path(__file__).resolve().parents[1]

AIRFLOW = frozenset(
    {"airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
)
PIPELINE = frozenset({"minio-init", "pipeline", "pipeline-dask", "dask-worker", "airflow-scheduler"})
# secret variable (of infra/.env) -> the services that may name it
SECRET_GRANTS: dict[str, frozenset[str]] = {
    "MINIO_ROOT_USER": frozenset({"minio", "minio-init"}),
    "MINIO_ROOT_PASSWORD": frozenset({"minio", "minio-init"}),
    "ADMIN_ACCESS_KEY_ID": frozenset({"minio-init"}),
    "ADMIN_SECRET_ACCESS_KEY": frozenset({"minio-init"}),
    "ANALYST_ACCESS_KEY_ID": frozenset({"minio-init"}),
    "ANALYST_SECRET_ACCESS_KEY": frozenset({"minio-init"}),
    "CONSOLE_VIEWER_USER": frozenset({"minio-init"}),
    "CONSOLE_VIEWER_PASSWORD": frozenset({"minio-init"}),
    "PIPELINE_ACCESS_KEY_ID": PIPELINE,
    "PIPELINE_SECRET_ACCESS_KEY": PIPELINE,
    "POSTGRES_PASSWORD": AIRFLOW | {"postgres"},
    "AIRFLOW_FERNET_KEY": AIRFLOW,
    "AIRFLOW_JWT_SECRET": AIRFLOW,
    "AIRFLOW_API_SECRET_KEY": AIRFLOW,
    "AIRFLOW_ADMIN_PASSWORD": frozenset({"airflow-init"}),
}
DASK = frozenset({"dask-tls", "dask-scheduler", "dask-worker", "pipeline-dask"})
TLS_FLAGS = ("--tls-ca-file", "--tls-cert", "--tls-key")

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|FERNET|ACCESS_KEY|ROOT_USER|SQL_ALCHEMY_CONN")
NOT_SECRET_SUFFIXES = ("_FILE", "_PATH", "_DIR")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
REQUIRED = re.compile(r":\?.*\S")  # ${VAR:?message}: compose stops when VAR is unset or empty


def secret_named(variable: str) -> bool:
    return bool(SECRET_NAME.search(variable)) and not variable.endswith(NOT_SECRET_SUFFIXES)


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def env_files(svc: dict[str, Any]) -> list[str]:
    files = svc.get("env_file") or []
    return [f if isinstance(f, str) else f["path"] for f in ([files] if isinstance(files, str) else files)]


def secrets_are_required_overrides(
    compose: dict[str, Any], read_env_file: Any = lambda p: dotenv_values(INFRA / p)
) -> list[str]:
    """A secret's value is ``${VAR:?message}`` (inside a URL is fine), never a literal or a
    default; the env files services read hold no secret-named variable at all."""
    problems = []
    for name, svc in services(compose).items():
        for var, value in environment(svc).items():
            refs = INTERPOLATION.findall(value)
            holds_secret = secret_named(var) or any(r in SECRET_GRANTS for r, _ in refs)
            if holds_secret and not refs:
                problems.append(f"{name}: {var} is a literal secret; make it ${{VAR:?message}}")
            for ref, modifier in refs:
                if (holds_secret or ref in SECRET_GRANTS) and not REQUIRED.match(modifier):
                    problems.append(
                        f"{name}: {var} uses ${{{ref}{modifier}}}; a secret must be ${{{ref}:?...}}"
                    )
        for path in env_files(svc):
            leaked = sorted(v for v in read_env_file(path) if secret_named(v))
            if leaked:
                problems.append(f"{name}: env file {path} holds secret(s) {', '.join(leaked)}")
    return problems


def secret_scope(compose: dict[str, Any]) -> list[str]:
    """Each service names only the secrets :data:`SECRET_GRANTS` gives it; a new secret must be
    added to the table (and to ``make compose-secrets``) before any service may use it."""
    problems = []
    for name, svc in services(compose).items():
        for var, value in environment(svc).items():
            for ref, _ in INTERPOLATION.findall(value):
                if ref in SECRET_GRANTS and name not in SECRET_GRANTS[ref]:
                    problems.append(
                        f"{name}: gets {ref} ({var}), granted to {sorted(SECRET_GRANTS[ref])} only"
                    )
                elif ref not in SECRET_GRANTS and secret_named(ref):
                    problems.append(f"{name}: {ref} is not in the grant table (infra/compose/rules.py)")
    return problems


def ports_on_loopback(compose: dict[str, Any]) -> list[str]:
    """Published ports only as ``127.0.0.1:HOST:CONTAINER`` (or ``host_ip: 127.0.0.1``)."""
    problems = []
    for name, svc in services(compose).items():
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                loopback = port.get("host_ip") == "127.0.0.1"
            else:
                parts = str(port).split(":")
                loopback = len(parts) == 3 and parts[0] == "127.0.0.1"
            if not loopback:
                problems.append(f"{name}: port {port} is not bound to 127.0.0.1")
    return problems


def networks_of(svc: dict[str, Any]) -> set[str]:
    if svc.get("network_mode") == "none":
        return set()
    nets = svc.get("networks")
    return set(nets or ["default"]) if not isinstance(nets, dict) else set(nets)


def dask_isolated(compose: dict[str, Any]) -> list[str]:
    """A scheduler runs whatever a connected client submits: every Dask connection is mutual
    TLS with encryption required, only the Dask services share its (internal) networks, it
    publishes nothing and holds no secret, and scheduler and workers have health checks."""
    all_services = services(compose)
    scheduler = all_services.get("dask-scheduler")
    if scheduler is None:
        return []
    problems = []
    declared = compose.get("networks") or {}
    if scheduler.get("ports"):
        problems.append("dask-scheduler publishes ports")
    for net in networks_of(scheduler):
        if not (declared.get(net) or {}).get("internal"):
            problems.append(f"dask-scheduler: network {net} is not internal")
        others = {n for n, s in all_services.items() if net in networks_of(s)} - DASK
        if others:
            problems.append(f"dask-scheduler: network {net} is shared with {sorted(others)}")
    if any(INTERPOLATION.search(v) for v in environment(scheduler).values()):
        problems.append("dask-scheduler: gets a secret (it runs no task)")
    for name in ("dask-scheduler", "dask-worker"):
        if name in all_services and not (all_services[name].get("healthcheck") or {}).get("test"):
            problems.append(f"{name}: no health check")
        command = [str(a) for a in (all_services.get(name) or {}).get("command") or []]
        if name in all_services and not all(flag in command for flag in TLS_FLAGS):
            problems.append(f"{name}: not started with its TLS certificate ({', '.join(TLS_FLAGS)})")
    for name in sorted(DASK & set(all_services)):
        svc = all_services[name]
        text = " ".join(str(a) for a in [*(svc.get("command") or []), *environment(svc).values()])
        text += " " + " ".join(str(a) for a in (svc.get("healthcheck") or {}).get("test") or [])
        if "tcp://" in text:
            problems.append(f"{name}: talks plain tcp:// to the scheduler; use tls://")
        if (
            name != "dask-tls"
            and environment(svc).get("DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION") != "true"
        ):
            problems.append(f"{name}: DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION is not true")
    return problems


def images_pinned(compose: dict[str, Any], dockerfiles: dict[str, str], allowed: dict[str, str]) -> list[str]:
    return pin.violations(pin.pulled_images(compose, dockerfiles), allowed)


def check_repository() -> list[str]:
    """Every rule on the tracked compose file, Dockerfiles and allow-list."""
    compose = yaml.safe_load(pin.COMPOSE_FILE.read_text())
    dockerfiles = {p.name: p.read_text() for p in pin.DOCKERFILES}
    allowed = pin.parse_allow_list(pin.ALLOW_LIST.read_text()) if pin.ALLOW_LIST.exists() else {}
    return [
        *secrets_are_required_overrides(compose),
        *secret_scope(compose),
        *ports_on_loopback(compose),
        *dask_isolated(compose),
        *images_pinned(compose, dockerfiles, allowed),
    ]
