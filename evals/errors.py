"""Every error the harness raises on purpose.

Each message names the offending input and the fix. The hierarchy::

    EvalsError
    ├── ConfigError            bad flag, unknown task/provider, missing API key variable
    ├── DataError              dataset cannot be loaded, or a row lacks a field
    ├── EndpointError          the model endpoint refused the run (no retry helps)
    │   ├── AuthError          401/403: the key is missing or wrong
    │   ├── UnknownModelError  404/400 naming the model: lists what the server offers
    │   ├── EndpointUnreachable  no connection could ever be opened (refused, unresolvable)
    │   └── CertificateError   the server's TLS certificate does not verify
    ├── RunFolderError         the run folder cannot be written
    │   ├── RunFolderBusy      another run holds its lock
    │   └── DiskFull           no space left on the disk that holds it
    └── RequestFailed          retries exhausted on a retryable failure (one attempt)

``RequestFailed`` is recorded per attempt as an ``error`` outcome and never counted as a
wrong answer; the others stop the run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AuthError",
    "CertificateError",
    "ConfigError",
    "DataError",
    "DiskFull",
    "EndpointError",
    "EndpointUnreachable",
    "EvalsError",
    "RequestFailed",
    "RunFolderBusy",
    "RunFolderError",
    "UnknownModelError",
    "did_you_mean",
]


class EvalsError(Exception):
    """Base class of the harness's own errors."""


class ConfigError(EvalsError):
    """A flag, task, provider or environment variable is wrong or missing."""


class DataError(EvalsError):
    """A dataset cannot be loaded or one of its rows is malformed."""


class EndpointError(EvalsError):
    """The endpoint answered in a way no retry can fix (400, 401, 403, 404)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(EndpointError):
    """The endpoint rejected the credentials."""


class UnknownModelError(EndpointError):
    """The endpoint does not serve the requested model."""


class EndpointUnreachable(EndpointError):
    """No connection to the endpoint could be opened, and none ever was: the server is not
    running, or the URL names the wrong host or port. Raised after a few quick retries, not
    after the whole retry budget."""


class CertificateError(EndpointError):
    """The endpoint's TLS certificate does not verify against the trusted roots (certifi's,
    or those ``SSL_CERT_FILE``/``SSL_CERT_DIR`` name). Retrying cannot fix it."""


class RunFolderError(EvalsError):
    """The run folder cannot be written: another run holds it, or its disk is full."""


class RunFolderBusy(RunFolderError):
    """Another run (another process, or another run in this one) holds the folder's lock."""


class DiskFull(RunFolderError):
    """No space left on the disk that holds the run folder. What was committed before is
    intact in the store, and a rerun resumes once there is space."""


class RequestFailed(EvalsError):
    """A request still failed after all its retries.

    Attributes:
        kind: short class of the last failure, e.g. ``"http 500"``, ``"timeout"``,
            ``"connection"``, ``"malformed body"``.
        attempts: how many times the request was sent.
    """

    def __init__(self, message: str, *, kind: str, attempts: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ``" Did you mean: x?"`` for the closest known names, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""
