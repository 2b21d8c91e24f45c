"""The command line as a user runs it (subprocesses, real simulator)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import orjson

EVALS = [sys.executable, "-m", "evals.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(extra)
    return env


def test_list_shows_tasks_and_providers():
    out = subprocess.run([*EVALS, "list"], capture_output=True, text=True, check=True,
                         env=_env(COLUMNS="200"))
    for name in ("aime2024", "aime2025", "demo_math", "mistral", "puter", "openrouter",
                 "vllm", "sglang", "llamacpp", "ollama", "lmstudio", "MISTRAL_API_KEY"):
        assert name in out.stdout


def test_missing_key_is_one_clear_error(aime2025_path):
    out = subprocess.run([*EVALS, "run", "aime2025", "--provider", "mistral", "--model",
                          "magistral-small-2509", "--data", str(aime2025_path)],
                         capture_output=True, text=True, env=_env(COLUMNS="200"),
                         check=False)
    assert out.returncode == 2
    assert "MISTRAL_API_KEY" in out.stderr and "not set" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_provider_suggests(aime2025_path):
    out = subprocess.run([*EVALS, "run", "aime2025", "--provider", "mistrall", "--model", "m",
                          "--data", str(aime2025_path)], capture_output=True, text=True, check=False,
                         env=_env(COLUMNS="200"))
    assert out.returncode == 2 and "Did you mean: mistral" in out.stderr


def test_demo_writes_a_labelled_run_folder(tmp_path):
    out = subprocess.run([*EVALS, "demo", "--out", str(tmp_path / "demo")], capture_output=True,
                         text=True, env=_env(COLUMNS="200"), timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "SIMULATED" in out.stdout
    folder = tmp_path / "demo"
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["simulated"] is True and manifest["attempts"] == 32
    assert "(SIMULATED)" in (folder / "summary.md").read_text()
    assert (folder / "samples.parquet").stat().st_size > 0


def test_simulate_serves_models_and_completions(aime2025_path, tmp_path):
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen([*EVALS, "simulate", "--task", "aime2025", "--data",
                             str(aime2025_path), "--port", "0", "--request-log", str(log)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"(http://\S+/v1)", line).group(1)  # type: ignore[union-attr]
        assert "30 prompts" in line
        models = httpx.get(url + "/models").json()
        assert models["object"] == "list"
        from evals.data import load_task_data
        from evals.registry import Registry

        sample = load_task_data(Registry().get("aime2025"), aime2025_path).samples[0]
        body = {"model": "any-name", "messages": sample.chat(), "seed": 1}
        answer = httpx.post(url + "/chat/completions", json=body).json()
        assert answer["model"] == "any-name" and answer["usage"]["completion_tokens"] > 0
        assert orjson.loads(log.read_bytes().splitlines()[0])["sample_id"] == "2025-I-1"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
