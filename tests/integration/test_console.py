"""The native stack's bucket console (``weed admin`` behind a login) as ``make stack-up`` starts it.

One stack for this module (weed mini + console on free loopback ports, in a temp dir), with a
gold Delta table and a quality report in it; stopped by ``down`` (by PID) afterwards. A real
browser (Playwright driving Debian's chromium, as tests/airflow/test_standalone.py) logs in as
the viewer; plain HTTP requests play the anonymous caller.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError

import polars as pl
import psutil
import pytest
from dotenv import dotenv_values

from infra.stack.__main__ import down, status, up
from infra.stack.console import Console
from infra.stack.settings import StackSettings
from infra.stack.weed import WeedPorts, WeedServer
from jobs.run import RunContext
from jobs.storage import Storage
from tests.integration.conftest import stack_settings

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# How long an assertion waits for the page: a UI still loading on a busy 2-core machine took more
# than Playwright's default 5 s to render a run's row (CI, 2026-12-07).
UI_WAIT_MS = 60_000
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
REPORT = "_quality_reports/run-console.html"
# Names that only bucket contents or bucket listings carry (never a login page).
SECRET_NAMES = ("print_features", "_quality_reports", "_delta_log", "bronze", "silver")


@dataclass
class Stack:
    settings: StackSettings
    server: WeedServer
    console: Console
    logins: dict[str, str | None]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = stack_settings(tmp_path_factory.mktemp("console") / "stack", WeedPorts.free())
    server = WeedServer.from_settings(settings)
    try:
        up(settings, seed=False)
        ctx = RunContext(settings)  # the pipeline writes a gold Delta table and a report
        frame = pl.DataFrame({"user_id": [1, 2], "n": [3, 4]})
        ctx.lake.write(ctx.gold("print_features"), frame, schema=frame.schema)
        Storage(settings).s3_client().put_object(Bucket="gold", Key=REPORT, Body=b"<html>quality</html>")
        console = Console.of(server)
        logins = dotenv_values(Path(settings.stack_dir) / "keys" / "console.env")
        yield Stack(settings, server, console, logins)
    finally:
        down(settings)


def get(url: str, context: ssl.SSLContext | None = None) -> tuple[int | str, bytes]:
    """An anonymous GET that does not follow redirects: (status or error name, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    handlers: list[urllib.request.BaseHandler] = [NoRedirect()]
    if context:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=10) as answer:
            return answer.status, answer.read()
    except HTTPError as exc:
        return exc.code, exc.read()
    except (URLError, OSError) as exc:
        return type(exc).__name__, b""


def test_stack_status_names_the_console_and_no_file_browser(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert status(stack.settings) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["console"] == stack.console.url and shown["console_pid"] == stack.console.pid()
    assert "file_browser" not in shown
    assert shown["console_logins"].endswith("keys/console.env")
    assert get(shown["console"] + "/login")[0] == 200  # the URL it prints works


def test_console_logins_are_owner_only_and_never_on_a_command_line(stack: Stack) -> None:
    logins = Path(stack.settings.stack_dir) / "keys" / "console.env"
    assert logins.stat().st_mode & 0o777 == 0o600
    assert (stack.console.options_path.stat().st_mode & 0o777) == 0o600
    assert stack.console.directory.stat().st_mode & 0o777 == 0o700
    passwords = [stack.logins["CONSOLE_VIEWER_PASSWORD"], stack.logins["CONSOLE_ADMIN_PASSWORD"]]
    assert all(p and len(p) >= 24 for p in passwords)
    for pid in (stack.console.pid(), stack.server.pid()):
        assert pid
        cmdline = " ".join(psutil.Process(pid).cmdline())
        assert not any(str(p) in cmdline for p in passwords)
    assert psutil.Process(stack.console.pid()).cmdline()[1] == "admin"


def test_anonymous_requests_to_the_console_get_a_login_and_no_bucket_contents(stack: Stack) -> None:
    base = stack.console.url
    pages = [
        "/",
        "/admin",
        "/object-store/buckets",
        "/object-store/buckets/gold",
        "/files?path=/buckets/gold",
        "/files?path=/buckets/gold/print_features",
        "/object-store/users",
        "/cluster/filers",
        "/storage/collections",
    ]
    apis = [
        "/api/s3/buckets",
        "/api/s3/buckets/gold",
        "/api/files/download?path=/buckets/gold/" + REPORT,
        "/api/files/view?path=/buckets/gold/" + REPORT,
        "/api/files/properties?path=/buckets/gold/" + REPORT,
        "/api/files/metadata?path=/buckets/gold",
        "/api/cluster/topology",
        "/api/users",
    ]
    for path in pages:
        code, body = get(base + path)
        assert code in (302, 303, 307), (path, code)
        assert not any(name.encode() in body for name in (*SECRET_NAMES, "gold")), path
    for path in apis:
        code, body = get(base + path)
        assert code in (401, 403, 404), (path, code)
        assert not any(name.encode() in body for name in (*SECRET_NAMES, "quality</html>")), path
    code, body = get(base + "/login")
    assert code == 200 and b"password" in body and not any(n.encode() in body for n in SECRET_NAMES)
    # weed serves /metrics without a login; the console's holds its own counters, no bucket
    code, body = get(base + "/metrics")
    assert code == 200 and b"bucket=" not in body and b"gold" not in body


def test_the_admin_port_and_its_metrics_are_the_stack_owners_only(stack: Stack) -> None:
    admin = f"127.0.0.1:{stack.server.ports.admin}"
    for url in (f"http://{admin}/metrics", f"http://{admin}/health"):
        code, body = get(url)
        assert code == 400 and b"gold" not in body  # "HTTP request to an HTTPS server"
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    code, body = get(f"https://{admin}/metrics", insecure)  # no client certificate
    assert isinstance(code, str) and body == b""
    tls = Path(stack.settings.stack_dir) / "tls"
    owner = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    owner.load_cert_chain(tls / "weed.crt", tls / "weed.key")
    code, body = get(f"https://{admin}/metrics", owner)  # the owner, with weed's certificate
    assert code == 200 and b'bucket="gold"' in body


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is missing (.ci/apt-packages.txt installs it)")
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    return found


def test_the_viewer_browses_gold_in_a_real_browser_and_cannot_change_anything(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = stack.console.url
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "bucket-console-viewer-gold.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            # anonymous: the login page, no bucket
            page.goto(f"{base}/object-store/buckets")
            assert page.url.endswith("/login")
            expect(page.locator("#password")).to_be_visible(timeout=UI_WAIT_MS)
            assert not any(name in page.content() for name in SECRET_NAMES)

            page.fill("#username", str(stack.logins["CONSOLE_VIEWER_USER"]))
            page.fill("#password", str(stack.logins["CONSOLE_VIEWER_PASSWORD"]))
            page.locator("button[type=submit]").click()
            page.wait_for_url(f"{base}/admin")
            page.goto(f"{base}/object-store/buckets")
            page.locator("a[href='/files?path=/buckets/gold']").first.click()  # open gold
            page.wait_for_url("**/files?path=/buckets/gold")
            expect(page.get_by_text("_quality_reports", exact=True)).to_be_visible(timeout=UI_WAIT_MS)
            page.get_by_text("print_features", exact=True).click()
            expect(page.get_by_text("_delta_log", exact=True)).to_be_visible(timeout=UI_WAIT_MS)
            page.get_by_text("_delta_log", exact=True).click()
            expect(page.get_by_text("00000000000000000000.json", exact=True)).to_be_visible(
                timeout=UI_WAIT_MS
            )
            page.goto(f"{base}/files?path=/buckets/gold/_quality_reports")
            expect(page.get_by_text("run-console.html", exact=True)).to_be_visible(timeout=UI_WAIT_MS)
            page.goto(f"{base}/files?path=/buckets/gold/print_features/_delta_log")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shot), full_page=True)

            # the report downloads, with the viewer's session
            report = page.request.get(f"{base}/api/files/download?path=/buckets/gold/{REPORT}")
            assert report.status == 200 and report.body() == b"<html>quality</html>"

            # writes with the viewer's session are refused
            upload = page.request.post(
                f"{base}/api/files/upload",
                multipart={
                    "path": "/buckets/gold",
                    "files": {"name": "evil.txt", "mimeType": "text/plain", "buffer": b"evil"},
                },
            )
            delete = page.request.delete(f"{base}/api/files/delete?path=/buckets/gold/{REPORT}")
            folder = page.request.post(
                f"{base}/api/files/create-folder", data={"path": "/buckets/gold", "folderName": "evil"}
            )
            bucket = page.request.post(f"{base}/api/s3/buckets", data={"name": "evilbucket"})
            drop = page.request.delete(f"{base}/api/s3/buckets/gold")
            for answer in (upload, delete, folder, bucket, drop):
                assert answer.status == 403, (answer.url, answer.status, answer.text())
                assert "Read-only users" in answer.text()
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    # nothing changed in the lake
    admin = Storage(stack.settings).for_identity("admin").s3_client()
    listed = [o["Key"] for o in admin.list_objects_v2(Bucket="gold").get("Contents", [])]
    assert REPORT in listed and not any("evil" in key for key in listed)
    assert "evilbucket" not in [b["Name"] for b in admin.list_buckets()["Buckets"]]
