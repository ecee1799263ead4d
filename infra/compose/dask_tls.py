"""``python -m infra.compose.dask_tls DIR``: the Dask cluster's mutual-TLS certificates.

The compose stack's one-shot ``dask-tls`` service runs this into the ``dask-tls`` volume; the
scheduler, the workers and the Dask pipeline mount it read-only and speak ``tls://`` only
(``distributed.comm.require-encryption``). Why: a Dask scheduler runs whatever any connected
client submits, and the pipeline's tasks carry its settings (keys included) over the network;
with mutual TLS only a holder of this certificate can connect, and nothing crosses in clear.

A private CA signs one certificate that every Dask process presents (server and client); the
CA's key is discarded, so no other certificate is accepted. Files are 0600 from creation.
Idempotent: existing certificates are kept (delete the volume to issue new ones).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.stack.security import issue_certificates

HOLDER = "dask"
FILES = ("ca.crt", f"{HOLDER}.crt", f"{HOLDER}.key")


def ensure(directory: Path) -> bool:
    """The certificates in ``directory`` unless all present; True if issued now."""
    if all((directory / name).is_file() for name in FILES):
        return False
    issue_certificates(directory, holder=HOLDER)
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
