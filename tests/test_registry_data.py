"""Task discovery and dataset loading (real files through `datasets`)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from evals.data import load_task_data
from evals.errors import ConfigError, DataError
from evals.registry import Registry


def test_builtin_tasks_are_discovered():
    names = Registry().names()
    assert {"aime2024", "aime2025", "demo_math"} <= set(names)


def test_unknown_task_suggests_the_closest_name():
    with pytest.raises(ConfigError, match=r"Unknown task 'aime2052'.*Did you mean: aime2025"):
        Registry().get("aime2052")


PLUGIN = '''
from evals import Task, DatasetSpec, task
from evals.grading.aime import grade_aime
from evals_tasks.aime import aime_sample

@task("{name}")
def make() -> Task:
    """A plugin from a folder."""
    return Task(name="{name}", dataset=DatasetSpec("me/mine", split="test"),
                to_sample=aime_sample, grader=grade_aime)
'''


def test_tasks_dir_plugins_are_found(tmp_path):
    (tmp_path / "mine.py").write_text(PLUGIN.format(name="my_aime"))
    registry = Registry(tasks_dirs=(tmp_path,))
    assert "my_aime" in registry.names()
    assert registry.get("my_aime").dataset.hub_id == "me/mine"
    assert ("my_aime", "A plugin from a folder.") in registry.describe()


def test_a_task_defined_twice_is_an_error_naming_both_files(tmp_path):
    (tmp_path / "clash.py").write_text(PLUGIN.format(name="aime2025"))
    with pytest.raises(ConfigError, match=r"defined twice.*aime\.py.*clash\.py"):
        Registry(tasks_dirs=(tmp_path,)).names()


def test_entry_point_plugins_are_found(tmp_path, monkeypatch):
    (tmp_path / "ep_tasks.py").write_text(PLUGIN.format(name="ep_aime"))
    dist = tmp_path / "ep_tasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-tasks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evals.tasks]\nmine = ep_tasks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ep_aime" in Registry().names()


def _rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_local_files_of_every_format_give_the_same_samples(fmt, aime2025_path, tmp_path):
    task = Registry().get("aime2025")
    reference = load_task_data(task, aime2025_path)
    table = pa.Table.from_pylist(_rows(aime2025_path))
    path = tmp_path / f"aime.{fmt}"
    if fmt == "jsonl":
        path.write_bytes(aime2025_path.read_bytes())
    elif fmt == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    loaded = load_task_data(task, path)
    assert [s.id for s in loaded.samples] == [s.id for s in reference.samples]
    assert [s.target for s in loaded.samples] == [s.target for s in reference.samples]
    assert [s.messages for s in loaded.samples] == [s.messages for s in reference.samples]
    assert loaded.rows == 30 and len(loaded.fingerprint) == 64


def test_limit_keeps_the_first_problems(aime2025_path):
    loaded = load_task_data(Registry().get("aime2025"), aime2025_path, limit=5)
    assert [s.id for s in loaded.samples] == [f"2025-I-{i}" for i in range(1, 6)]
    assert loaded.samples[0].target == "70"
    assert "between 0 and 999" in loaded.samples[0].messages[0][1]


def test_malformed_rows_are_listed_by_position(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "a", "problem": "p1", "answer": "5"}\n'
        '{"id": "b", "problem": "p2"}\n'
        '{"id": "c", "problem": "p3", "answer": "five"}\n'
        '{"id": "a", "problem": "p4", "answer": "7"}\n'
    )
    with pytest.raises(DataError) as info:
        load_task_data(Registry().get("aime2025"), path)
    message = str(info.value)
    assert "3 of 4 row(s)" in message and str(path) in message
    assert "1 x KeyError: none of the fields answer" in message and "(row 2)" in message
    assert "1 x ValueError: answer 'five' is not an integer (row 3)" in message
    assert "1 x id 'a' repeats row 1 (row 4)" in message
    assert "--skip-bad-rows" in message


def test_offline_without_data_names_the_dataset_and_the_flag(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DataError) as info:
        load_task_data(Registry().get("aime2024"))
    message = str(info.value)
    assert "HuggingFaceH4/aime_2024" in message
    assert "--data aime2024=PATH" in message


def test_the_hub_check_leaves_a_proxied_hub_to_datasets(monkeypatch):
    from evals.data import _hub_unreachable

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    assert "cannot reach 127.0.0.1:9" in (_hub_unreachable() or "")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _hub_unreachable() is None  # only the proxy can say; a direct probe would lie


def test_missing_and_unsupported_files_are_clear(tmp_path):
    task = Registry().get("aime2025")
    with pytest.raises(DataError, match="not found"):
        load_task_data(task, tmp_path / "nope.jsonl")
    odd = tmp_path / "aime.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'"):
        load_task_data(task, odd)


def test_plugin_docstring_shape():
    # Every built-in plugin module names its benchmark in a docstring.
    from evals_tasks import aime

    assert aime.__doc__ and "AIME" in textwrap.dedent(aime.__doc__)
