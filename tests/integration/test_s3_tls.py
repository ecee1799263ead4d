"""AWS_CA_BUNDLE: every library trusts an https endpoint whose certificate a private CA signed.

The endpoint is a local TLS server that answers every request with S3's AccessDenied. Reaching
that answer means the TLS handshake passed. The libraries run in a subprocess, because the Rust
clients (deltalake, polars) read ``SSL_CERT_FILE`` once per process (set when it builds its
``Lake``).
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARK = "tls-handshake-passed"

PROBE = """
import json, sys
from jobs.query import EXTENSIONS, extension_path, literal
from jobs.settings import Settings
from jobs.storage import Storage
from jobs.tables import Lake

endpoint, bundle = sys.argv[1], sys.argv[2] or None
storage = Storage(Settings(_env_file=None, lake_bronze="s3://bronze", aws_endpoint_url=endpoint,
    aws_access_key_id="k", aws_secret_access_key="s", aws_region="us-east-1",
    aws_ca_bundle=bundle, s3_max_attempts=1))
Lake(storage)  # as every stage's process (and Dask worker) does before its Rust clients
uri = "s3://bronze/t"

def duck():
    import duckdb
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for name in EXTENSIONS:
        con.execute(f"LOAD {literal(str(extension_path(name)))}")
    con.execute(*storage.duckdb_secret())
    for setting in storage.duckdb_settings_sql():
        con.execute(setting)
    con.sql("SELECT * FROM read_parquet('s3://bronze/t/x.parquet')").fetchall()

def delta():
    import deltalake
    deltalake.DeltaTable(uri, storage_options=storage.delta_options(uri))

def polars():
    import polars as pl
    pl.scan_parquet(uri + "/*.parquet", storage_options=storage.polars_options(uri)).collect()

calls = {
    "boto3": lambda: storage.s3_client().list_objects_v2(Bucket="bronze"),
    "s3fs": lambda: storage.filesystem(uri).ls("bronze/t"),
    "deltalake": delta, "polars": polars, "duckdb": duck,
}
seen = {}
for name, call in calls.items():
    try:
        call()
        seen[name] = "no error"
    except Exception as exc:
        seen[name] = str(exc)
print(json.dumps(seen))
"""


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1, written as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(
        subject: str,
        issuer: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            builder = builder.add_extension(usage, critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("lake-test-ca", "lake-test-ca", ca_key, ca_key, ca=True)
    leaf = build("127.0.0.1", "lake-test-ca", leaf_key, ca_key, ca=False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class _Denied(http.server.BaseHTTPRequestHandler):
    """Answers everything as S3 refusing access, with a marker in the message."""

    def _deny(self) -> None:
        body = f"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>{MARK}</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body.encode())

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _deny

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def tls_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(https URL on 127.0.0.1, the CA file that signed its certificate)."""
    ca, cert, key = _certificates(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Denied)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()


def probe(tmp_path: Path, endpoint: str, bundle: Path | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "AWS_EC2_METADATA_DISABLED": "true",
        # As container images often set it: the CA bundle must win over the system bundle.
        "SSL_CERT_FILE": ssl.get_default_verify_paths().cafile
        or ssl.get_default_verify_paths().openssl_cafile,
    }
    res = subprocess.run(
        [sys.executable, "-c", PROBE, endpoint, str(bundle or "")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    seen: dict[str, str] = json.loads(res.stdout.strip().splitlines()[-1])
    return seen


def test_a_ca_bundle_makes_every_library_trust_the_private_ca(
    tls_endpoint: tuple[str, Path], tmp_path: Path
) -> None:
    endpoint, ca = tls_endpoint
    seen = probe(tmp_path, endpoint, ca)
    assert {name: MARK in text for name, text in seen.items()} == dict.fromkeys(seen, True), seen
    assert set(seen) == {"boto3", "s3fs", "deltalake", "polars", "duckdb"}


def test_without_the_ca_bundle_no_library_trusts_it(tls_endpoint: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, _ = tls_endpoint
    seen = probe(tmp_path, endpoint, None)
    assert not [name for name, text in seen.items() if MARK in text], seen
