"""``make compose-pin`` (``python -m infra.compose.pin``): pin every pulled image by digest.

The compose file and the Dockerfiles name their base images ``name:tag``; a tag can be moved
to other content, a digest cannot. Digests cannot be resolved without a registry (this
project's machines reach none), so a tag-only image is allowed only while it is listed, with
a reason, in ``infra/unpinned-images.txt``. On a machine that reaches the registries this
command asks each one (Docker Registry HTTP API v2: ``HEAD /v2/<repo>/manifests/<tag>``, an
anonymous bearer token when asked for one) for the digest of each tag-only image, rewrites
``name:tag`` to ``name:tag@sha256:...`` in place (comments and layout kept) and drops the
image from the allow-list. ``--check`` only reports (offline; what the tests and
``make audit`` use). Digests are never made up: an image that cannot be resolved stays as it
is, listed, and the command exits 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[1]
COMPOSE_FILE = INFRA / "docker-compose.yml"
DOCKERFILES = (INFRA / "Dockerfile", INFRA / "airflow.Dockerfile")
ALLOW_LIST = INFRA / "unpinned-images.txt"

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
FROM_LINE = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)
# The manifest kinds a registry may answer with; the index/list digest is the multi-arch one.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
DOCKER_HUB_API = "registry-1.docker.io"  # docker.io's registry API host


@dataclass(frozen=True)
class ImageRef:
    """``[registry/]repository[:tag][@digest]``, normalised as docker does."""

    registry: str
    repository: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        rest, _, digest = ref.partition("@")
        first, sep, remainder = rest.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, remainder
        else:
            registry, path = "docker.io", rest
        name, colon, tag = path.rpartition(":")
        if not colon or "/" in tag:  # no tag (a colon, if any, was a registry port)
            name, tag = path, ""
        if registry == "docker.io" and "/" not in name:
            name = f"library/{name}"
        return cls(registry, name, tag, digest)

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == "docker.io" else self.registry


def is_digest_pinned(ref: str) -> bool:
    return bool(DIGEST.search(ref))


def dockerfile_bases(text: str) -> list[str]:
    """The images a Dockerfile pulls: its ``FROM`` images, not earlier stages or ``scratch``."""
    stages: set[str] = set()
    bases = []
    for image, alias in FROM_LINE.findall(text):
        if image.lower() not in stages and image != "scratch":
            bases.append(image)
        if alias:
            stages.add(alias.lower())
    return bases


def compose_images(compose: dict) -> dict[str, str]:
    """service -> the image it pulls (services that ``build:`` their image pull nothing)."""
    return {
        name: svc["image"]
        for name, svc in (compose.get("services") or {}).items()
        if "image" in svc and "build" not in svc
    }


def pulled_images(compose: dict, dockerfiles: dict[str, str]) -> dict[str, list[str]]:
    """image reference -> where it is named (``compose:<service>`` or a Dockerfile's name)."""
    found: dict[str, list[str]] = {}
    for service, image in compose_images(compose).items():
        found.setdefault(image, []).append(f"compose:{service}")
    for name, text in dockerfiles.items():
        for image in dockerfile_bases(text):
            found.setdefault(image, []).append(name)
    return found


def parse_allow_list(text: str) -> dict[str, str]:
    """``image  # reason`` per line -> {image: reason}; a line without a reason is an error."""
    allowed = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        image, _, reason = line.partition("#")
        if not reason.strip():
            raise ValueError(f"unpinned-images.txt:{number}: {image.strip()} has no reason")
        allowed[image.strip()] = reason.strip()
    return allowed


def violations(images: dict[str, list[str]], allowed: dict[str, str]) -> list[str]:
    """Every image neither digest-pinned nor allow-listed with a real tag, and stale entries."""
    problems = []
    for image, where in sorted(images.items()):
        if is_digest_pinned(image):
            continue
        tag = ImageRef.parse(image).tag
        if image not in allowed:
            problems.append(f"{image} ({', '.join(where)}) is not pinned by digest: make compose-pin")
        elif tag in ("", "latest"):
            problems.append(f"{image} ({', '.join(where)}): an allow-listed image still needs a fixed tag")
    problems += [
        f"unpinned-images.txt lists {image}, which nothing uses (or is pinned now): remove it"
        for image in sorted(set(allowed) - set(images))
    ]
    return problems


def rewrite(text: str, image: str, digest: str) -> str:
    """``text`` with every whole-token ``image`` (no digest yet) followed by ``@digest``."""
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    token = re.compile(r"(?<![\w./:@-])" + re.escape(image) + r"(?![\w./:@-])")
    return token.sub(f"{image}@{digest}", text)


def remove_from_allow_list(text: str, image: str) -> str:
    kept = [line for line in text.splitlines(keepends=True) if line.partition("#")[0].strip() != image]
    return "".join(kept)


# -- the registry -------------------------------------------------------------------------------
Fetch = Callable[[urllib.request.Request], tuple[int, dict[str, str], bytes]]


def http_fetch(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of an HTTPS request; HTTP errors are answers, not exceptions."""
    if not request.full_url.startswith("https://"):
        raise ValueError(f"refusing a non-HTTPS registry URL: {request.full_url}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - https only
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def parse_challenge(header: str) -> dict[str, str]:
    """``Bearer realm="...",service="...",scope="..."`` -> its parameters."""
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ValueError(f"unsupported registry auth scheme: {scheme}")
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def resolve_digest(image: str, fetch: Fetch = http_fetch) -> str:
    """The digest a registry serves for ``image``'s tag (anonymous pull token if required)."""
    import json
    import urllib.parse

    ref = ImageRef.parse(image)
    if not ref.tag:
        raise ValueError(f"{image} has no tag to resolve")
    url = f"https://{ref.api_host}/v2/{ref.repository}/manifests/{ref.tag}"
    headers = {"Accept": MANIFEST_TYPES}
    status, answer, _ = fetch(urllib.request.Request(url, headers=headers, method="HEAD"))
    if status == 401:
        challenge = parse_challenge(_header(answer, "WWW-Authenticate"))
        query = {k: v for k, v in challenge.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{ref.repository}:pull")
        if not challenge.get("realm", "").startswith("https://"):
            raise RuntimeError(f"{image}: the registry's token realm is not HTTPS: {challenge}")
        token_url = f"{challenge['realm']}?{urllib.parse.urlencode(query)}"
        status, _, body = fetch(urllib.request.Request(token_url))  # noqa: S310 - https checked
        if status != 200:
            raise RuntimeError(f"{image}: the registry refused an anonymous token (HTTP {status})")
        token_answer = json.loads(body)
        token = token_answer.get("token") or token_answer.get("access_token")
        headers["Authorization"] = f"Bearer {token}"
        status, answer, _ = fetch(urllib.request.Request(url, headers=headers, method="HEAD"))
    digest = _header(answer, "Docker-Content-Digest")
    if status != 200 or not digest:
        raise RuntimeError(f"{image}: no digest from {ref.api_host} (HTTP {status})")
    return digest


# -- the command --------------------------------------------------------------------------------
def current(compose_file: Path, dockerfiles: Iterable[Path]) -> dict[str, list[str]]:
    compose = yaml.safe_load(compose_file.read_text())
    return pulled_images(compose, {p.name: p.read_text() for p in dockerfiles})


def pin(
    compose_file: Path = COMPOSE_FILE,
    dockerfiles: Iterable[Path] = DOCKERFILES,
    allow_list: Path = ALLOW_LIST,
    fetch: Fetch = http_fetch,
) -> tuple[dict[str, str], dict[str, str]]:
    """Resolve and write every tag-only image's digest: ({image: digest}, {image: why not})."""
    files = [compose_file, *dockerfiles]
    images = current(compose_file, files[1:])
    done, failed = {}, {}
    for image in sorted(i for i in images if not is_digest_pinned(i)):
        try:
            done[image] = resolve_digest(image, fetch)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            failed[image] = str(exc) or type(exc).__name__
    for path in files:
        text = path.read_text()
        new = text
        for image, digest in done.items():
            new = rewrite(new, image, digest)
        if new != text:
            path.write_text(new)
    if done and allow_list.exists():
        text = allow_list.read_text()
        for image in done:
            text = remove_from_allow_list(text, image)
        allow_list.write_text(text)
    return done, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.compose.pin", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report (offline), exit 1 on a gap")
    args = parser.parse_args(argv)
    if args.check:
        allowed = parse_allow_list(ALLOW_LIST.read_text()) if ALLOW_LIST.exists() else {}
        problems = violations(current(COMPOSE_FILE, DOCKERFILES), allowed)
        for line in problems:
            print(line)
        print(f"images: {len(problems)} problem(s); {len(allowed)} tag-only image(s) allow-listed")
        return 1 if problems else 0
    done, failed = pin()
    for image, digest in done.items():
        print(f"pinned {image}@{digest}")
    for image, why in failed.items():
        print(f"NOT pinned {image}: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
