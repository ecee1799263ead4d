"""Errors a user can hit, each carrying one message that says what to check.

The CLI prints ``PipelineError`` as a single line and exits non-zero; anything else is a bug
and gets a traceback. Exit codes: 0 done; 1 a bug (traceback); 2 usage or settings; 3 storage;
4 data (a quality gate held the commit); 5 another run holds the lake lease; 6 this run lost
the lease; 7 done, with raw files rejected whole (:data:`EXIT_REJECTED_INPUT`); 8 a table is
damaged (its log, a checkpoint or a data file): ``python -m jobs doctor`` says what and repairs it.
"""

from __future__ import annotations

import sys


class PipelineError(Exception):
    """A failure caused by input, configuration or the environment, not by a bug."""

    exit_code = 2


class ConfigError(PipelineError):
    """A setting is missing or invalid."""


class StorageError(PipelineError):
    """The object store or file system cannot be reached or refuses the request."""

    exit_code = 3


class CredentialsUnavailable(ConfigError, StorageError):
    """No keys for the object store: none set, the named profile is missing, or the standard
    chain (profile, SSO, role) could not produce them. A settings problem (exit 2), and a
    storage one for code that handles those (it passes through storage_error unchanged)."""

    exit_code = 2


class DataError(PipelineError):
    """The data breaks a rule that must stop the run."""

    exit_code = 4


class StoreUnreachable(StorageError):
    """Nothing answers at the object-store endpoint."""


class CredentialsRejected(StorageError):
    """The object store does not know the access key or the secret does not match."""


class AccessDenied(StorageError):
    """The identity is known but may not do this on this bucket/prefix."""


class BucketMissing(StorageError):
    """The bucket named by a LAKE_* location does not exist."""


class LeaseHeld(PipelineError):
    """Another run holds the lake's write lease (one writer at a time); the message names it."""

    exit_code = 5


class LeaseLost(PipelineError):
    """This run's lease was taken over or broken, so it must not commit anything more."""

    exit_code = 6


class TableDamaged(PipelineError):
    """A table's Delta log, a checkpoint or a data file it names is damaged or missing.

    Not a storage failure (retrying changes nothing) and not a bug: ``python -m jobs doctor``
    names what is wrong and ``doctor --repair`` applies the safe fixes."""

    exit_code = 8


EXIT_REJECTED_INPUT = 7
"""The run completed, but some raw files were rejected whole (see the manifest's reasons)."""


def exit_code(exc: PipelineError, *, debug: bool) -> int:
    """What a command does with a user-facing error: one line and its exit code (``--debug``:
    the traceback instead)."""
    if debug:
        raise exc
    print(f"error: {exc}", file=sys.stderr)
    return exc.exit_code
