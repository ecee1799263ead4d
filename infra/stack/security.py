"""The local stack's secrets on disk, owner-only from the start, and weed's side doors locked.

Everything under ``STACK_DIR`` is created with owner-only permissions (directories 0700, files
0600, opened with ``os.open`` so no file is ever readable by others, not even for a moment).

``weed mini`` serves more than S3: its master, volume and filer HTTP APIs answered anonymous
requests (list/read/upload/delete objects through the filer, ``/col/delete`` on the master drops
a bucket's volumes). :func:`write_security` writes ``security.toml`` into the server's working
directory (weed reads ``./security.toml``) with:

- JWT signing keys for volume writes and reads and for filer HTTP writes and reads (random,
  never leave ``STACK_DIR``);
- mutual TLS on the master, volume, filer and admin HTTP ports and on every gRPC port: a private
  CA and one certificate under ``STACK_DIR/tls`` that only weed itself presents, so a client
  without it is refused during the TLS handshake (the admin port's ``/metrics``, which weed serves
  without a login and which names every bucket, is the stack owner's only: ``curl --cert``);
- the volume UI and the filer's directory metadata off.

The bucket console (a separate ``weed admin``, :mod:`infra.stack.console`) runs from
``STACK_DIR/console`` with the same file minus ``[https.admin]``: it talks to the master and filer
with weed's certificate and serves its own login page over plain http on 127.0.0.1.

The S3 gateway (plain http on ``AWS_ENDPOINT_URL``) keeps working: it is the only door, and
it checks the S3 identities. Measured against weed 4.48 (tests/integration/test_security.py).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) created 0700; an existing one is tightened to 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``path`` atomically, owner-only from its first byte (temp file 0600, renamed)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def issue_certificates(directory: Path, holder: str = "weed") -> None:
    """A private CA and one server+client certificate for ``localhost``/``127.0.0.1`` in
    ``directory``, issued by trustme (ECDSA P-256): ``ca.crt``, ``<holder>.crt``, ``<holder>.key``,
    all 0600. The CA's key is never written: nobody can issue another certificate weed accepts."""
    import trustme  # dev lock only: the native stack runs from the dev virtualenv

    ca = trustme.CA(organization_name="lakehouse-stack-ca")
    cert = ca.issue_cert("localhost", "127.0.0.1", common_name=holder)
    write_private(directory / "ca.crt", ca.cert_pem.bytes())
    write_private(directory / f"{holder}.crt", cert.cert_chain_pems[0].bytes())
    write_private(directory / f"{holder}.key", cert.private_key_pem.bytes())


GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "client")
HTTPS_COMPONENTS = ("master", "volume", "filer", "admin")
CONSOLE_DIR = "console"


def security_toml(tls: Path, keys: dict[str, str] | None = None, *, https_admin: bool = True) -> str:
    """The file's text; ``keys`` (JWT section -> key) default to fresh random ones, and
    ``https_admin=False`` leaves the admin HTTP port in plain http (the console's copy)."""
    sections = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    keys = keys or {section: secrets.token_hex(32) for section in sections}
    cert, pkey, ca = (str(tls / n) for n in ("weed.crt", "weed.key", "ca.crt"))
    lines = [
        "# Written by python -m infra.stack (infra/stack/security.py). Owner-only; do not",
        "# copy anywhere: it holds the stack's JWT signing keys.",
        "",
    ]
    for section in sections:
        lines += [f"[{section}]", f'key = "{keys[section]}"', "expires_after_seconds = 10", ""]
    lines += [
        "[access]",
        "ui = false",
        "",
        "[filer.expose_directory_metadata]",
        "enabled = false",
        "",
        "[grpc]",
        f'ca = "{ca}"',
        "",
    ]
    for component in GRPC_COMPONENTS:
        lines += [f"[grpc.{component}]", f'cert = "{cert}"', f'key = "{pkey}"', ""]
    for component in HTTPS_COMPONENTS:
        if component == "admin" and not https_admin:
            continue
        lines += [f"[https.{component}]", f'cert = "{cert}"', f'key = "{pkey}"', f'ca = "{ca}"', ""]
    lines += ["[https.client]", "enabled = true", f'cert = "{cert}"', f'key = "{pkey}"', f'ca = "{ca}"', ""]
    return "\n".join(lines)


def write_security(directory: Path) -> bool:
    """``security.toml``, ``tls/`` and the console's ``console/security.toml`` in ``directory``
    unless present and current (a file from before the admin port's TLS is rewritten, with new
    JWT keys: they only sign requests that live 10 s); True if written now."""
    path = directory / "security.toml"
    console = directory / CONSOLE_DIR / "security.toml"
    tls = directory / "tls"
    certs = all((tls / n).is_file() for n in ("ca.crt", "weed.crt", "weed.key"))
    if certs and console.is_file() and path.is_file() and "[https.admin]" in path.read_text():
        return False
    private_dir(tls)
    if not certs:
        issue_certificates(tls)
    text = security_toml(tls.resolve())
    write_private(path, text)
    keys = dict(re.findall(r'^\[(jwt\.[a-z_.]+)\]\nkey = "([0-9a-f]+)"', text, re.MULTILINE))
    write_private(console, security_toml(tls.resolve(), keys, https_admin=False))
    return True
