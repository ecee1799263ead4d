"""The local stack's secrets on disk, owner-only from the start, and weed's side doors locked.

Everything under ``STACK_DIR`` is created with owner-only permissions (directories 0700, files
0600, opened with ``os.open`` so no file is ever readable by others, not even for a moment).

``weed mini`` serves more than S3: its master, volume and filer HTTP APIs answered anonymous
requests (list/read/upload/delete objects through the filer, ``/col/delete`` on the master drops
a bucket's volumes). :func:`write_security` writes ``security.toml`` into the server's working
directory (weed reads ``./security.toml``) with:

- JWT signing keys for volume writes and reads and for filer HTTP writes and reads (random,
  never leave ``STACK_DIR``);
- mutual TLS on the master, volume and filer HTTP ports and on every gRPC port: a private CA
  and one certificate under ``STACK_DIR/tls`` that only weed itself presents, so a client
  without it is refused during the TLS handshake;
- the volume UI and the filer's directory metadata off.

The S3 gateway (plain http on ``AWS_ENDPOINT_URL``) keeps working: it is the only door, and
it checks the S3 identities. Measured against weed 4.48 (tests/integration/test_security.py).
"""

from __future__ import annotations

import os
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
HTTPS_COMPONENTS = ("master", "volume", "filer")


def security_toml(tls: Path) -> str:
    def key() -> str:
        return secrets.token_hex(32)

    cert, pkey, ca = (str(tls / n) for n in ("weed.crt", "weed.key", "ca.crt"))
    lines = [
        "# Written by python -m infra.stack (infra/stack/security.py). Owner-only; do not",
        "# copy anywhere: it holds the stack's JWT signing keys.",
        "",
    ]
    for section in ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read"):
        lines += [f"[{section}]", f'key = "{key()}"', "expires_after_seconds = 10", ""]
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
        lines += [f"[https.{component}]", f'cert = "{cert}"', f'key = "{pkey}"', f'ca = "{ca}"', ""]
    lines += ["[https.client]", "enabled = true", f'cert = "{cert}"', f'key = "{pkey}"', f'ca = "{ca}"', ""]
    return "\n".join(lines)


def write_security(directory: Path) -> bool:
    """``security.toml`` and ``tls/`` in ``directory`` unless present; True if written now."""
    path = directory / "security.toml"
    tls = directory / "tls"
    if path.is_file() and all((tls / n).is_file() for n in ("ca.crt", "weed.crt", "weed.key")):
        return False
    private_dir(tls)
    issue_certificates(tls)
    write_private(path, security_toml(tls.resolve()))
    return True
