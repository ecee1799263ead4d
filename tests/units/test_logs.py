"""Log lines go to the stderr of the moment, so a progress display can print them above itself."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from jobs import logs


def test_log_records_follow_a_redirected_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # restored after the test
    monkeypatch.setattr(root, "level", root.level)
    logs.configure()
    shown = io.StringIO()
    monkeypatch.setattr(sys, "stderr", shown)  # what rich's live display does while it spins
    logging.getLogger("jobs.test").warning("bronze prints: file 1 of 3")
    assert shown.getvalue() == "WARNING jobs.test: bronze prints: file 1 of 3\n"
