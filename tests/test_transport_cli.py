"""The transport's promises through the command line, as a user meets them.

* No invisible send: against ``evals simulate --fault-drop 0.2`` (a fifth of the requests
  dropped mid-answer), the simulator's request log holds exactly the attempts plus the
  retries the run records per attempt.
* Every failure with its cause, and at once: a refused port, a base URL without ``/v1``, a
  certificate that does not verify each stop ``evals run`` within seconds with the fix.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import read_log
from test_transport_servers import certificates, serving  # noqa: F401 (a fixture)

import evals

EVALS = [sys.executable, "-m", "evals.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(NO_COLOR="1", COLUMNS="200", **extra)
    return env


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 120
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVALS, "run", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=timeout, check=False)


def test_the_server_receives_exactly_the_attempts_plus_recorded_retries(
        aime2025_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    sim = subprocess.Popen([*EVALS, "simulate", "--task", "aime2025", "--data",
                            str(aime2025_path), "--port", "0", "--fault-drop", "0.2",
                            "--seed", "5", "--request-log", str(log)],
                           stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert sim.stdout is not None
        url = re.search(r"(http://\S+/v1)", sim.stdout.readline()).group(1)  # type: ignore[union-attr]
        out = tmp_path / "run"
        done = _run("aime2025", "--model", "sim", "--base-url", url, "--data",
                    str(aime2025_path), "--n", "4", "--concurrency", "16",
                    "--max-retries", "12", "--out", str(out))
        assert done.returncode == 0, done.stderr[-2000:]
        requests = read_log(log)
    finally:
        sim.terminate()
        sim.wait(10)
        sim.stdout.close()  # type: ignore[union-attr]
    table = evals.read_attempts(out)
    assert len(table) == 120 and (table["outcome"] == "answered").all()
    drops = sum(r["fault"] == "drop" for r in requests)
    assert drops >= 12  # the faults really happened
    assert len(requests) == len(table) + int(table["retries"].sum())
    import json

    client = json.loads((out / "manifest.json").read_text())["client"]
    assert client["sent"] == len(requests) and client["retries"] == table["retries"].sum()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


@pytest.mark.parametrize("where", ["refused", "unresolvable"])
def test_an_endpoint_that_is_not_there_stops_the_run_in_seconds(
        where: str, aime2025_path: Path, tmp_path: Path) -> None:
    url = (f"http://127.0.0.1:{_closed_port()}/v1" if where == "refused"
           else "http://no-such-host.invalid/v1")
    started = time.monotonic()
    done = _run("aime2025", "--model", "m", "--base-url", url, "--data", str(aime2025_path),
                "--n", "2", "--out", str(tmp_path / "run"))
    took = time.monotonic() - started
    assert done.returncode != 0
    said = " ".join((done.stdout + done.stderr).split())
    assert f"Cannot connect to {url}" in said
    assert "Is the server running? Check --base-url" in said
    assert "Traceback" not in said
    assert took < 15, took


def test_a_base_url_without_v1_is_told_to_add_it(
        aime2025_path: Path, tmp_path: Path, simulator: object) -> None:
    with simulator({"aime2025": aime2025_path}) as sim:  # type: ignore[operator]
        base = sim.base_url.removesuffix("/v1")
        done = _run("aime2025", "--model", "m", "--base-url", base, "--data",
                    str(aime2025_path), "--n", "2", "--out", str(tmp_path / "run"))
        asked = len(read_log(sim.request_log))
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0 and asked == 0
    assert f"try --base-url {base}/v1" in said


def test_a_certificate_that_does_not_verify_stops_the_run_naming_ssl_cert_file(
        aime2025_path: Path, tmp_path: Path,
        certificates: tuple[Path, ssl.SSLContext]) -> None:  # noqa: F811
    pem, server_ctx = certificates
    with serving("aiohttp", tls=server_ctx) as served:
        started = time.monotonic()
        env = _env()
        env.pop("SSL_CERT_FILE", None)
        env.pop("SSL_CERT_DIR", None)
        done = _run("aime2025", "--model", "m", "--base-url", served.base_url, "--data",
                    str(aime2025_path), "--n", "2", "--out", str(tmp_path / "run"), env=env)
        took = time.monotonic() - started
        trusted = _run("aime2025", "--model", "plain", "--base-url", served.base_url, "--data",
                       str(aime2025_path), "--n", "1", "--limit", "2",
                       "--out", str(tmp_path / "ok"), env=_env(SSL_CERT_FILE=str(pem)))
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0 and took < 15
    assert "TLS certificate does not verify" in said and "SSL_CERT_FILE" in said
    assert "Traceback" not in said
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert len(served.received) == 2  # the trusted run's two; the untrusted one sent none
