"""Task plugins: what a task declares, and where the harness finds them.

A plugin is one Python file holding functions decorated with ``@task``. Each returns a
``Task``. Nothing is registered by importing: the registry imports plugin modules when it
is asked for tasks and collects the decorated functions it finds in them, from

1. the built-in plugins (this repository's ``tasks/`` folder, installed as ``evals_tasks``);
2. folders given with ``--tasks-dir``;
3. the entry-point group ``evals.tasks`` (each entry point names a module or a function).

A later source may not silently replace an earlier task of the same name: that is an error
naming both files.

A task may offer several prompt protocols (``Task.protocols``): the prompt a published
number was made with, so that number can be reproduced. The first is the default; the user
picks another with ``--option prompt=NAME``, which ``Task.with_options`` checks before the
task's ``configure`` builds the task for it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import random
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from evals.errors import ConfigError, did_you_mean
from evals.records import Grade, Sample

__all__ = [
    "AnswerWriter",
    "DatasetSpec",
    "Grader",
    "Prepare",
    "Registry",
    "Task",
    "TaskFactory",
    "configure_tasks",
    "task",
]

Row = Mapping[str, Any]

#: How the simulated server writes a right or wrong answer to one sample:
#: ``(sample, correct, rng, prompt) -> (reasoning, answer text)``; ``prompt`` is the user
#: message actually sent (for multiple choice, with the choices in the attempt's order).
AnswerWriter = Callable[[Sample, bool, random.Random, str], tuple[str, str]]

#: Turns a problem into what one attempt asks: ``(sample, seed, given) -> sample``.
#: ``seed`` is the attempt's own derived seed (``None`` when grading responses produced
#: elsewhere); ``given`` holds the fields of such a response line (``{}`` in a run), e.g. a
#: recorded choice permutation. Must be deterministic in its arguments.
Prepare = Callable[[Sample, "int | None", Mapping[str, Any]], Sample]


class Grader(Protocol):
    """Grades one answer (the reasoning already removed) against its sample's target."""

    def __call__(self, answer: str, sample: Sample) -> Awaitable[Grade]: ...


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Where a task's data lives on the Hugging Face Hub.

    Attributes:
        hub_id: the dataset repository, e.g. ``"HuggingFaceH4/aime_2024"``.
        split: the split to read.
        config: the dataset config (``None`` for the default).
        revision: a commit sha or tag to pin (``None``: the default branch; the manifest
            then records the fingerprint of what was loaded).
        gated: the dataset needs the user's own hub token.
        data_files: files of the hub repository to read with ``datasets``' own json /
            parquet / csv loaders instead of the repository's loading script (script-based
            datasets that current ``datasets`` no longer runs), e.g.
            ``("test.jsonl", "test2.jsonl")``.
    """

    hub_id: str
    split: str
    config: str | None = None
    revision: str | None = None
    gated: bool = False
    data_files: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [self.hub_id]
        if self.config:
            parts.append(f"config {self.config}")
        parts.append(f"split {self.split}")
        if self.revision:
            parts.append(f"revision {self.revision}")
        if self.data_files:
            parts.append(f"files {', '.join(self.data_files)}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Task:
    """What a benchmark declares.

    Attributes:
        name: the name used on the command line.
        dataset: the hub source; ``--data PATH`` replaces it with a local file.
        to_sample: turns one dataset row (and its index) into a ``Sample``; raises
            ``KeyError``/``ValueError`` on a malformed row, which the loader reports with
            the row's position.
        grader: the async grader.
        n: default repeats per problem.
        max_tokens: default generation budget (reasoning included).
        subsets: metadata fields the summary breaks results down by.
        default_data: a local file used when no ``--data`` is given (demo tasks that ship
            their data); ``None`` means the hub.
        description: one line for ``evals list``.
        answer_writer: how the simulated server writes a right or wrong answer to one of
            this task's samples (see ``AnswerWriter``); ``None`` uses the integer-answer
            math writer.
        prepare: per-attempt changes to a sample (see ``Prepare``), e.g. shuffled choices;
            ``None``: every repeat asks the same prompt.
        prompt_key: maps a prompt to what identifies its problem, for the simulated server
            to recognise prompts that ``prepare`` varies (e.g. the question without its
            choices); ``None``: the prompt itself.
        pass_k: report pass@k for every k up to the repeats (code tasks).
        needs_sandbox: the grader runs model-written code; a run checks the sandbox before
            sending any request.
        heavy_grader: grading waits on worker processes (sympy, a sandbox): the runner
            grades such answers beside the requests instead of in line (implied by
            ``needs_sandbox``). Cheap graders (AIME, multiple choice) run in line.
        keep: which samples to use (applied after loading, before ``--limit``); ``None``
            keeps all.
        options: the task options it accepts (``--since``, ``--until``, ``--release``,
            ``--option KEY=VALUE``); giving one it does not accept is an error.
        configure: returns the task specialised by its options (another dataset, a
            ``keep`` filter, another prompt protocol); called only when options are given.
            Raises ``ConfigError`` for a bad value.
        protocols: ``(name, description)`` of each prompt protocol the task offers, the
            first being the default; the description is one line naming the source, e.g.
            ``("r1", "DeepSeek-R1 README: ...")``. A task with protocols accepts the option
            ``prompt`` (added to ``options`` if missing) and must have a ``configure`` that
            builds the task for ``options["prompt"]`` (see ``protocol_option``); a name it
            does not offer is refused before ``configure`` is called. ``()``: one prompt.
        protocol: the protocol this task object asks with; ``None`` (the default) means the
            first of ``protocols``, and stays ``None`` for a task without protocols.
        stop: stop sequences sent with every request of this task (e.g. ``("Question:",)``
            for a few-shot prompt, whose continuation would otherwise run on into invented
            questions); ``()``: none.
        lazy_fields: bulky row fields the loader leaves on disk: ``to_sample`` gets an
            ``evals.data.LazyField`` (``load()`` reads the value back) for each one whose
            value is at least ``evals.data.LAZY_MIN_BYTES`` long, the value itself
            otherwise (e.g. LiveCodeBench's private tests, read when a problem is graded).

    Raises:
        ValueError: ``protocols`` repeats a name, ``protocol`` is not one of them, or a
            task with protocols has no ``configure``.
    """

    name: str
    dataset: DatasetSpec
    to_sample: Callable[[Row, int], Sample]
    grader: Grader
    n: int = 1
    max_tokens: int = 32768
    subsets: tuple[str, ...] = ()
    default_data: Path | None = None
    description: str = ""
    answer_writer: AnswerWriter | None = None
    prepare: Prepare | None = None
    prompt_key: Callable[[str], str] | None = None
    pass_k: bool = False
    needs_sandbox: bool = False
    heavy_grader: bool = False
    keep: Callable[[Sample], bool] | None = None
    options: tuple[str, ...] = ()
    configure: Callable[[Mapping[str, str]], Task] | None = None
    protocols: tuple[tuple[str, str], ...] = ()
    protocol: str | None = None
    stop: tuple[str, ...] = ()
    lazy_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.protocols:
            if self.protocol is not None:
                raise ValueError(f"Task {self.name!r}: protocol {self.protocol!r} given but "
                                 "the task declares no protocols")
            return
        names = [name for name, _ in self.protocols]
        if len(set(names)) != len(names):
            raise ValueError(f"Task {self.name!r}: protocol names repeat: {names}")
        if self.protocol is None:
            # Frozen: __post_init__ is the one place a default may still be filled in.
            object.__setattr__(self, "protocol", names[0])
        elif self.protocol not in names:
            raise ValueError(f"Task {self.name!r}: protocol {self.protocol!r} is not one of "
                             f"its protocols ({', '.join(names)})")
        if self.configure is None:
            raise ValueError(f"Task {self.name!r} offers prompt protocols but has no "
                             "configure() to build the task for another one")
        if "prompt" not in self.options:
            object.__setattr__(self, "options", (*self.options, "prompt"))

    def protocol_option(self, options: Mapping[str, str]) -> str:
        """The protocol ``options`` asks for: ``options["prompt"]``, else this task's own.

        For ``configure`` functions; ``with_options`` has already checked the name.

        Raises:
            ConfigError: the task has no protocols, or does not offer the one named.

        Example:
            >>> # def configure(options): return build(task.protocol_option(options))
        """
        if not self.protocols or self.protocol is None:
            raise ConfigError(f"Task {self.name!r} has a single prompt; it does not take "
                              "--option prompt=NAME.")
        wanted = options.get("prompt", self.protocol).strip()
        names = [name for name, _ in self.protocols]
        if wanted not in names:
            listing = "; ".join(f"{name} ({about})" if about else name
                                for name, about in self.protocols)
            raise ConfigError(
                f"Task {self.name!r}: unknown prompt protocol {wanted!r}."
                f"{did_you_mean(wanted, names)} Known protocols: {listing}. "
                f"Use --option prompt={names[0]} (the default) or another of them."
            )
        return wanted

    def with_options(self, options: Mapping[str, str]) -> Task:
        """This task specialised by ``options`` (itself when there are none).

        A ``prompt`` option is checked against ``protocols`` first (surrounding spaces
        dropped), so ``configure`` sees only the name of a protocol the task offers.

        Raises:
            ConfigError: an option this task does not accept, an unknown prompt protocol,
                or a bad value.
        """
        if not options:
            return self
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise ConfigError(
                f"Task {self.name!r} does not accept the option(s) {', '.join(unknown)} "
                f"(it accepts: {accepted}). Drop them, or run them only with tasks that "
                "take them."
            )
        wanted = self.protocol_option(options) if self.protocols else None
        if wanted is not None and "prompt" in options:
            options = {**options, "prompt": wanted}  # configure sees the name as listed
        if self.configure is None:
            return self
        configured = self.configure(options)
        if configured.name != self.name:
            raise ConfigError(f"Task {self.name!r}: configure() renamed it to "
                              f"{configured.name!r}.")
        if wanted is not None and configured.protocol != wanted:
            raise ConfigError(f"Task {self.name!r}: configure() built protocol "
                              f"{configured.protocol!r} when {wanted!r} was asked for.")
        return configured


TaskFactory = Callable[[], Task]
_MARK = "__evals_task__"


def task(name: str) -> Callable[[TaskFactory], TaskFactory]:
    """Mark a zero-argument function returning a ``Task`` as the plugin for ``name``.

    Example:
        >>> @task("aime2025")
        ... def aime2025() -> Task: ...
    """

    def mark(fn: TaskFactory) -> TaskFactory:
        setattr(fn, _MARK, name)
        return fn

    return mark


@dataclass(slots=True)
class _Entry:
    factory: TaskFactory
    origin: str
    doc: str


@dataclass(slots=True)
class Registry:
    """The tasks found in the built-in plugins, extra folders and entry points."""

    tasks_dirs: tuple[Path, ...] = ()
    entry_points: bool = True
    _entries: dict[str, _Entry] | None = field(default=None, init=False)
    _built: dict[str, Task] = field(default_factory=dict, init=False)

    def _scan(self) -> dict[str, _Entry]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, _Entry] = {}
        import evals_tasks

        for info in sorted(pkgutil.iter_modules(evals_tasks.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                module = importlib.import_module(f"evals_tasks.{info.name}")
                self._collect(module, entries)
        for folder in self.tasks_dirs:
            if not folder.is_dir():
                raise ConfigError(f"--tasks-dir {folder} is not a folder of task plugin files.")
            for path in sorted(folder.glob("*.py")):
                if not path.name.startswith("_"):
                    self._collect(_import_file(path), entries)
        if self.entry_points:
            from importlib.metadata import entry_points

            for ep in entry_points(group="evals.tasks"):
                loaded = ep.load()
                if isinstance(loaded, ModuleType):
                    self._collect(loaded, entries)
                elif callable(loaded) and hasattr(loaded, _MARK):
                    self._add(entries, loaded, f"entry point {ep.name} ({ep.value})")
                else:
                    raise ConfigError(
                        f"Entry point {ep.name} = {ep.value} in group evals.tasks is neither "
                        "a module nor a function decorated with @evals.task."
                    )
        self._entries = entries
        return entries

    def _collect(self, module: ModuleType, entries: dict[str, _Entry]) -> None:
        for value in vars(module).values():
            if callable(value) and hasattr(value, _MARK):
                self._add(entries, value, getattr(module, "__file__", None) or module.__name__)

    @staticmethod
    def _add(entries: dict[str, _Entry], factory: TaskFactory, origin: str) -> None:
        name = getattr(factory, _MARK)
        if name in entries and entries[name].factory is not factory:
            raise ConfigError(
                f"Task {name!r} is defined twice: in {entries[name].origin} and in {origin}. "
                "Rename one of them."
            )
        doc = (factory.__doc__ or "").strip().splitlines()
        entries[name] = _Entry(factory, origin, doc[0] if doc else "")

    def names(self) -> list[str]:
        return sorted(self._scan())

    def describe(self) -> list[tuple[str, str]]:
        return [(name, entry.doc) for name, entry in sorted(self._scan().items())]

    def get(self, name: str) -> Task:
        """The task called ``name``; a ``ConfigError`` with suggestions if there is none."""
        if name in self._built:
            return self._built[name]
        entries = self._scan()
        if name not in entries:
            raise ConfigError(
                f"Unknown task {name!r}.{did_you_mean(name, entries)} "
                f"Known tasks: {', '.join(sorted(entries))}. "
                "Add plugins with --tasks-dir DIR."
            )
        built = entries[name].factory()
        if not isinstance(built, Task) or built.name != name:
            raise ConfigError(
                f"The @task({name!r}) function in {entries[name].origin} must return a Task "
                f"named {name!r}."
            )
        self._built[name] = built
        return built

    def get_many(self, names: Iterable[str]) -> list[Task]:
        return [self.get(n) for n in names]


def _import_file(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    mod_name = f"_evals_user_tasks_{digest}_{path.stem}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Cannot import task plugin {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise ConfigError(f"Task plugin {path} failed to import: {exc!r}") from exc
    return module


def configure_tasks(tasks: list[Task], options: Iterable[tuple[str, str]]) -> list[Task]:
    """Each task specialised by the options it accepts (``Task.with_options``); an option
    no task of the run accepts is an error. Shared by runs, ``evals grade`` and the
    simulator, so all three see the same problems."""
    given = dict(options)
    unused = set(given) - {name for t in tasks for name in t.options}
    if unused:
        accepted = "; ".join(f"{t.name}: {', '.join(t.options) or 'none'}" for t in tasks)
        raise ConfigError(
            f"No task of this run accepts the option(s) {', '.join(sorted(unused))} "
            f"(options accepted: {accepted})."
        )
    return [t.with_options({k: v for k, v in given.items() if k in t.options}) for t in tasks]
