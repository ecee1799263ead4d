"""``python -m infra.compose.dask_tls DIR``: the Dask cluster's mutual-TLS certificates.

The compose stack's one-shot ``dask-tls`` service runs this into the ``dask-tls`` volume; the
scheduler, the workers and the Dask pipeline mount it read-only and speak ``tls://`` only
(``distributed.comm.require-encryption``). Why: a Dask scheduler runs whatever any connected
client submits, and the pipeline's tasks carry its settings (keys included) over the network;
with mutual TLS only a holder of this certificate can connect, and nothing crosses in clear.

The files are what distributed's own ``Security.temporary()`` makes (in the image already): one
self-signed certificate and its key that every Dask process presents (server and client) and
trusts as its only CA, so no other certificate is accepted. Files are 0600 from creation.
Idempotent: existing certificates are kept while they have more than 30 days left (they are
issued for a year); otherwise, or after the volume is deleted, new ones are issued.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from infra.stack.security import write_private

HOLDER = "dask"
FILES = ("ca.crt", f"{HOLDER}.crt", f"{HOLDER}.key")
RENEW_BEFORE = datetime.timedelta(days=30)


def _valid(directory: Path) -> bool:
    """All files present and the certificate not within ``RENEW_BEFORE`` of its end."""
    from cryptography import x509

    if not all((directory / name).is_file() for name in FILES):
        return False
    cert = x509.load_pem_x509_certificate((directory / f"{HOLDER}.crt").read_bytes())
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_BEFORE


def ensure(directory: Path) -> bool:
    """The certificates in ``directory`` unless valid ones are there; True if issued now."""
    from distributed.security import Security

    if _valid(directory):
        return False
    temporary = Security.temporary()
    pems = (temporary.tls_ca_file, temporary.tls_client_cert, temporary.tls_client_key)
    for name, pem in zip(FILES, pems, strict=True):
        write_private(directory / name, str(pem))  # PEM text: temporary() fills every field
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.compose.dask_tls", description=__doc__)
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    made = ensure(args.directory)
    print(f"dask TLS: {'issued' if made else 'kept'} {', '.join(FILES)} in {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
