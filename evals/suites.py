"""Suites: a model card's benchmarks with the card's settings, as a small TOML file.

A suite names the tasks to run and, per task, the number of samples, the token budget and
the task options the card used; it may name a default model and a profile
(``evals.profiles``). Shipped suites live in ``reference_data/suites/``; users can write
their own::

    name = "my-suite"
    description = "AIME 2024 at 16 samples"
    model = "magistral-small-2509"      # optional: default --model (the run's --model wins)
    profile = "magistral-1.2"           # optional
    source = "https://..."              # optional: where the settings come from
    base_urls = ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]  # optional: replicas

    [[task]]
    name = "aime2024"
    n = 16                              # optional; default: the task's own
    max_tokens = 131072                 # optional
    options = { prompt = "r1" }         # optional task options

Task names and option names are not checked here (the task registry does that when the run
starts); types are.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from evals.errors import ConfigError, did_you_mean

__all__ = ["Suite", "SuiteTask", "load_suite", "parse_suite", "shipped_suites"]

_SUITE_KEYS = ("name", "description", "model", "profile", "source", "base_urls", "task")
_TASK_KEYS = ("name", "n", "max_tokens", "options")


@dataclass(frozen=True, slots=True)
class SuiteTask:
    """One task of a suite.

    Attributes:
        name: the task's registry name, e.g. ``"aime2024"`` (checked when the run starts).
        n: samples per problem, or ``None`` for the task's default.
        max_tokens: the completion budget, or ``None`` to leave it to the profile/task.
        options: task options as ``(name, value)`` string pairs, e.g.
            ``(("release", "release_v5"), ("since", "2024-08-01"))``. TOML numbers, booleans
            (``"true"``/``"false"``) and dates (``2024-08-01`` unquoted) become strings.
    """

    name: str
    n: int | None
    max_tokens: int | None
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Suite:
    """A set of tasks with their settings.

    Attributes:
        name: the suite's name (the file's stem when the file gives none).
        description: one line for listings.
        model: the default model, or ``None``; a model given for the run wins.
        profile: a profile name (``evals.profiles``), or ``None``. Not checked here.
        source: where the settings come from (a model card URL), or ``None``.
        tasks: the tasks, in file order; at least one, no name twice.
        path: the file the suite was read from.
        base_urls: endpoints to spread the run over (replicas of one server), used when the
            run names no ``--base-url``; empty: none.
    """

    name: str
    description: str
    model: str | None
    profile: str | None
    source: str | None
    tasks: tuple[SuiteTask, ...]
    path: str
    base_urls: tuple[str, ...] = ()


def _optional_str(data: dict[str, object], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be a non-empty string, got {value!r}.")
    return value


def _positive_int(data: dict[str, object], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: '{key}' must be a positive integer, got {value!r}; "
                          f"write e.g. {key} = {16 if key == 'n' else 32768}, or leave it out "
                          "for the default.")
    return value


def _option_value(value: object, key: str, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise ConfigError(f"{where}: option '{key}' must be a string, number, boolean or date, "
                      f"got {value!r}.")


def _base_urls(data: dict[str, object], where: str) -> tuple[str, ...]:
    value = data.get("base_urls", [])
    if not isinstance(value, list) or not all(isinstance(u, str) and u.strip() for u in value):
        raise ConfigError(f"{where}: 'base_urls' must be a list of URLs, e.g. base_urls = "
                          f"[\"http://127.0.0.1:8000/v1\", \"http://127.0.0.1:8001/v1\"], "
                          f"got {value!r}.")
    return tuple(u.strip() for u in value)


def _unknown_key(data: dict[str, object], known: tuple[str, ...], where: str) -> None:
    unknown = [key for key in data if key not in known]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"{where}: unknown key '{key}'.{did_you_mean(key, known)} "
                          f"Known keys: {', '.join(known)}.")


def _parse_task(entry: object, origin: str, index: int) -> SuiteTask:
    where = f"{origin}: [[task]] #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table.")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} needs name = \"<task>\", e.g. name = \"aime2024\".")
    where = f"{origin}: task '{name}'"
    _unknown_key(entry, _TASK_KEYS, where)
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: 'options' must be a table, e.g. options = "
                          f"{{ release = \"release_v5\" }}, got {options!r}.")
    return SuiteTask(
        name=name.strip(),
        n=_positive_int(entry, "n", where),
        max_tokens=_positive_int(entry, "max_tokens", where),
        options=tuple((str(k), _option_value(v, str(k), where)) for k, v in options.items()),
    )


def parse_suite(text: str, path: str) -> Suite:
    """Parse and validate a suite's TOML text.

    Args:
        text: the TOML document.
        path: the file it came from; named in errors, stored in ``Suite.path``, and its stem
            is the name when the document has none.

    Raises:
        ConfigError: invalid TOML, an unknown key, a wrong type, no ``[[task]]`` or a task
            named twice; the message names the file and the field.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Suite file {path} is not valid TOML: {exc}.") from exc
    _unknown_key(data, _SUITE_KEYS, f"Suite file {path}")
    where = f"Suite file {path}"
    tasks_raw = data.get("task")
    if tasks_raw is None or (isinstance(tasks_raw, list) and not tasks_raw):
        raise ConfigError(f"{where} has no tasks; add at least one [[task]] table with "
                          "name = \"<task>\".")
    if not isinstance(tasks_raw, list):
        raise ConfigError(f"{where}: 'task' must be [[task]] tables (an array), not a single "
                          "[task] table or a value.")
    tasks = tuple(_parse_task(entry, path, i) for i, entry in enumerate(tasks_raw))
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise ConfigError(f"{where}: task '{task.name}' is listed twice; keep one [[task]] "
                              "per task.")
        seen.add(task.name)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: 'description' must be a string, got {description!r}.")
    return Suite(
        name=_optional_str(data, "name", where) or Path(path).stem,
        description=description,
        model=_optional_str(data, "model", where),
        profile=_optional_str(data, "profile", where),
        source=_optional_str(data, "source", where),
        tasks=tasks,
        path=path,
        base_urls=_base_urls(data, where),
    )


def _shipped_files() -> dict[str, Traversable]:
    folder = resources.files("evals") / "reference_data" / "suites"
    return {entry.name.removesuffix(".toml"): entry for entry in folder.iterdir()
            if entry.name.endswith(".toml") and entry.is_file()}


def _read_shipped(name: str, entry: Traversable) -> Suite:
    return parse_suite(entry.read_text(encoding="utf-8"),
                       f"evals/reference_data/suites/{name}.toml")


def shipped_suites() -> list[Suite]:
    """Every suite shipped with the harness, sorted by name."""
    return [_read_shipped(name, entry) for name, entry in sorted(_shipped_files().items())]


def load_suite(name_or_path: str | os.PathLike[str]) -> Suite:
    """A shipped suite by name (``"deepseek-r1"``), or a suite file by path.

    Anything ending in ``.toml``, containing a path separator or naming an existing file is
    read as a path; anything else must be a shipped suite's name.

    Raises:
        ConfigError: unknown name (with suggestions and the shipped names), a missing or
            unreadable file, or a malformed suite (see ``parse_suite``).
    """
    text = os.fspath(name_or_path)
    is_path = (text.endswith(".toml") or os.sep in text or "/" in text
               or Path(text).is_file())
    if is_path:
        file = Path(text)
        try:
            content = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"Cannot read suite file {text!r}: {exc.strerror or exc}. Give "
                              "the path of a .toml file, or a shipped suite's name.") from exc
        return parse_suite(content, str(file))
    shipped = _shipped_files()
    if text in shipped:
        return _read_shipped(text, shipped[text])
    raise ConfigError(f"Unknown suite {text!r}.{did_you_mean(text, shipped)} Shipped suites: "
                      f"{', '.join(sorted(shipped))}; or give the path of a .toml file.")
