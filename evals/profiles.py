"""Model profiles: the settings a model family's makers recommend, each with its source.

A profile says which temperature, top-p, top-k, token budget, system prompt and extra
request fields a model family should be run with, and where each value comes from (a model
card, a README, a report). The shipped profiles live in ``reference_data/profiles.toml``.

How a run's settings are decided (``resolve_settings``): a flag the user passed wins, then
the profile's value, then the task's default, else the field is left to the server. Every
resolved value records its origin, so a run manifest can say *why* it used T 0.6.

Example:
    >>> profile = profile_for_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
    >>> profile.name, profile.temperature
    ('deepseek-r1', 0.6)
    >>> resolve_settings(profile, {"temperature": 0.0})["temperature"].origin
    'flag'
"""

from __future__ import annotations

import fnmatch
import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from evals.errors import ConfigError, did_you_mean

__all__ = [
    "SETTING_KEYS",
    "Profile",
    "Setting",
    "get_profile",
    "load_profiles",
    "parse_profiles",
    "profile_for_model",
    "resolve_settings",
    "system_message",
]

#: The request settings ``resolve_settings`` decides, in this order.
SETTING_KEYS: tuple[str, ...] = ("temperature", "top_p", "top_k", "max_tokens", "system_prompt")

_FORMATS = ("text", "thinking_chunks")
_THINK_OPEN = "[THINK]"
_THINK_CLOSE = "[/THINK]"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Profile:
    """Recommended settings for one model family.

    Attributes:
        name: the profile's name, e.g. ``"magistral-1.2"``.
        description: one line for listings.
        models: lowercase ``fnmatch`` patterns. They are matched against the model name
            lowercased, with any ``org/`` prefix removed (``"mistralai/Magistral-Small-2509"``
            is matched as ``"magistral-small-2509"``).
        temperature: sampling temperature, or ``None`` to leave it to the server.
        top_p: nucleus sampling, or ``None``.
        top_k: top-k sampling, or ``None``. Not an OpenAI field: vLLM and SGLang accept it,
            other servers may reject it, so it is only set where a source recommends it.
        max_tokens: the completion budget (reasoning included), or ``None``.
        system_prompt: the recommended system prompt, or ``None`` for none.
        system_prompt_format: ``"text"`` (a plain string) or ``"thinking_chunks"`` (the text
            holds ``[THINK]...[/THINK]``, sent to Mistral's API as content chunks; see
            ``system_message``).
        extra_body: extra request-body fields, e.g. ``(("reasoning_effort", "high"),)``.
        expected_completion_tokens: an estimate of the mean completion tokens per attempt on
            reasoning benchmarks, only for cost estimates before a run (see its source).
        sources: ``(field, source)`` pairs: a URL or a reference section per value.
    """

    name: str
    description: str
    models: tuple[str, ...]
    temperature: float | None
    top_p: float | None
    top_k: int | None
    max_tokens: int | None
    system_prompt: str | None
    system_prompt_format: str
    extra_body: tuple[tuple[str, Any], ...]
    expected_completion_tokens: int
    sources: tuple[tuple[str, str], ...]

    def source_of(self, field: str) -> str | None:
        """The source recorded for ``field`` (e.g. ``"temperature"``), or ``None``."""
        for name, source in self.sources:
            if name == field:
                return source
        return None

    def matches(self, model: str) -> bool:
        """Whether ``model`` (any spelling: ``org/Name``, mixed case) is one of this
        profile's models."""
        key = _model_key(model)
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in self.models)


@dataclass(frozen=True, slots=True)
class Setting:
    """One resolved request setting and why it has that value.

    Attributes:
        value: the value to send; ``None`` means "do not send, the server decides".
        origin: ``"flag"``, ``"profile <name>"``, ``"suite <name>"``, ``"task default"`` or
            ``"server default"``.
        source: the citation when the value came from a profile, else ``None``.
    """

    value: Any
    origin: str
    source: str | None


# -- loading ------------------------------------------------------------------------------------

_KEYS: dict[str, str] = {
    "name": "a string",
    "description": "a string",
    "models": "a list of strings",
    "temperature": "a number",
    "top_p": "a number",
    "top_k": "a positive integer",
    "max_tokens": "a positive integer",
    "system_prompt": "a string",
    "system_prompt_format": "'text' or 'thinking_chunks'",
    "extra_body": "a table of strings, numbers or booleans",
    "expected_completion_tokens": "a positive integer",
    "sources": "a table of strings",
}
_REQUIRED = ("name", "description", "models", "expected_completion_tokens")


def _model_key(model: str) -> str:
    """``"mistralai/Magistral-Small-2509"`` -> ``"magistral-small-2509"``."""
    return model.strip().rsplit("/", 1)[-1].lower()


def _fail(where: str, key: str, raw: object) -> ConfigError:
    return ConfigError(f"{where}: '{key}' must be {_KEYS[key]}, got {raw!r}. Fix it in the file.")


def _number(where: str, key: str, raw: object) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _fail(where, key, raw)
    return float(raw)


def _positive_int(where: str, key: str, raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise _fail(where, key, raw)
    return raw


def _string(where: str, key: str, raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _fail(where, key, raw)
    return raw


def _parse_profile(entry: object, origin: str, index: int) -> Profile:
    if not isinstance(entry, dict):
        raise ConfigError(f"{origin}: profile #{index + 1} must be a [[profile]] table.")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{origin}: profile #{index + 1} needs name = \"...\" (a string).")
    where = f"{origin}: profile '{name}'"
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where} has unknown key '{unknown[0]}'.{did_you_mean(unknown[0], _KEYS)}"
                          f" Known keys: {', '.join(_KEYS)}.")
    for key in _REQUIRED:
        if key not in entry:
            raise ConfigError(f"{where} is missing '{key}' ({_KEYS[key]}).")

    description = _string(where, "description", entry["description"]) or ""
    models = entry["models"]
    if (not isinstance(models, list) or not models
            or not all(isinstance(m, str) and m for m in models)):
        raise _fail(where, "models", models)
    for pattern in models:
        if pattern != pattern.lower():
            raise ConfigError(f"{where}: model pattern {pattern!r} must be lowercase "
                              f"(write {pattern.lower()!r}); names are lowercased before matching.")

    temperature = _number(where, "temperature", entry.get("temperature"))
    if temperature is not None and temperature < 0:
        raise _fail(where, "temperature", temperature)
    top_p = _number(where, "top_p", entry.get("top_p"))
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"{where}: 'top_p' must be in (0, 1], got {top_p!r}.")
    top_k = _positive_int(where, "top_k", entry.get("top_k"))
    max_tokens = _positive_int(where, "max_tokens", entry.get("max_tokens"))
    system_prompt = _string(where, "system_prompt", entry.get("system_prompt"))
    fmt = entry.get("system_prompt_format", "text")
    if fmt not in _FORMATS:
        raise _fail(where, "system_prompt_format", fmt)
    if fmt == "thinking_chunks" and (
            system_prompt is None or _THINK_OPEN not in system_prompt
            or _THINK_CLOSE not in system_prompt.split(_THINK_OPEN, 1)[1]):
        raise ConfigError(f"{where}: system_prompt_format 'thinking_chunks' needs a system_prompt "
                          f"containing {_THINK_OPEN}...{_THINK_CLOSE}; use 'text' otherwise.")

    extra = entry.get("extra_body", {})
    if not isinstance(extra, dict) or not all(
            isinstance(v, str | int | float | bool) for v in extra.values()):
        raise _fail(where, "extra_body", extra)
    expected = _positive_int(where, "expected_completion_tokens",
                             entry["expected_completion_tokens"])
    assert expected is not None  # required above, and None is not a TOML value

    sources = entry.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise _fail(where, "sources", sources)
    fields = set(_KEYS) - {"name", "description", "sources"}
    for field in sources:
        if field not in fields:
            raise ConfigError(f"{where}: sources names unknown field '{field}'."
                              f"{did_you_mean(field, fields)} Fields: {', '.join(sorted(fields))}.")

    return Profile(
        name=name,
        description=description,
        models=tuple(models),
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_tokens=max_tokens,
        system_prompt=system_prompt,
        system_prompt_format=fmt,
        extra_body=tuple(extra.items()),
        expected_completion_tokens=expected,
        sources=tuple(sources.items()),
    )


def parse_profiles(text: str, origin: str = "<profiles>") -> dict[str, Profile]:
    """Parse and validate a profiles TOML document (``[[profile]]`` tables).

    Args:
        text: the TOML text.
        origin: how to name the document in error messages (a path).

    Returns:
        The profiles by name, in file order (the order ``profile_for_model`` tries them).

    Raises:
        ConfigError: invalid TOML, an unknown key, a wrong type or a duplicate name; the
            message names the profile and the key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}.") from exc
    extra = sorted(set(data) - {"profile"})
    if extra:
        raise ConfigError(f"{origin}: unknown top-level key '{extra[0]}'; "
                          "profiles are [[profile]] tables.")
    entries = data.get("profile", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{origin}: 'profile' must be an array of tables ([[profile]]).")
    profiles: dict[str, Profile] = {}
    for index, entry in enumerate(entries):
        profile = _parse_profile(entry, origin, index)
        if profile.name in profiles:
            raise ConfigError(f"{origin}: profile '{profile.name}' is defined twice; "
                              "rename or remove one.")
        profiles[profile.name] = profile
    return profiles


@functools.cache
def _shipped() -> Mapping[str, Profile]:
    resource = resources.files("evals") / "reference_data" / "profiles.toml"
    return MappingProxyType(parse_profiles(resource.read_text(encoding="utf-8"),
                                           "evals/reference_data/profiles.toml"))


def load_profiles(path: str | os.PathLike[str] | None = None) -> dict[str, Profile]:
    """The profiles by name, in matching order.

    Args:
        path: a profiles TOML file; ``None`` (the default) reads the shipped file, parsed once
            and cached.

    Raises:
        ConfigError: the file is missing or invalid.
    """
    if path is None:
        return dict(_shipped())
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read profiles file {str(file)!r}: {exc.strerror}.") from exc
    return parse_profiles(text, str(file))


def get_profile(name: str) -> Profile:
    """The shipped profile called ``name``.

    Raises:
        ConfigError: unknown name, e.g. "Unknown profile 'magistral-12'. Did you mean:
            magistral-1.2? Known profiles: ...".
    """
    profiles = _shipped()
    if name in profiles:
        return profiles[name]
    raise ConfigError(f"Unknown profile {name!r}.{did_you_mean(name, profiles)} "
                      f"Known profiles: {', '.join(profiles)}.")


def profile_for_model(model: str) -> Profile | None:
    """The first shipped profile one of whose patterns matches ``model``, else ``None``.

    The name is lowercased and any ``org/`` prefix removed first, so
    ``"mistralai/Magistral-Small-2509"``, ``"magistral-small-2509"`` and
    ``"mistralai/magistral-small-2509"`` all give ``magistral-1.2``.
    """
    for profile in _shipped().values():
        if profile.matches(model):
            return profile
    return None


# -- applying -----------------------------------------------------------------------------------


def system_message(profile: Profile, provider: str | None) -> dict[str, Any] | None:
    """The system message to send for ``profile``, or ``None`` when it has no prompt.

    Normally ``{"role": "system", "content": text}``. A ``"thinking_chunks"`` prompt sent to
    Mistral's API (``provider == "mistral"``) becomes a list of content chunks, as the
    Magistral 1.2 card's client does, so that ``[THINK]``/``[/THINK]`` are encoded as the
    special tokens they are::

        [{"type": "text", "text": <before [THINK]>},
         {"type": "thinking", "thinking": [{"type": "text", "text": <inside>}], "closed": True},
         {"type": "text", "text": <after [/THINK]>}]

    Empty text chunks are left out. Every other provider gets the plain string (an
    OpenAI-compatible server has no chunk type for it; the markers then go in as text).

    Args:
        profile: the profile.
        provider: the provider's name (``"mistral"``, ``"vllm"``, ...), or ``None``.
    """
    text = profile.system_prompt
    if text is None:
        return None
    if profile.system_prompt_format != "thinking_chunks" or provider != "mistral":
        return {"role": "system", "content": text}
    before, rest = text.split(_THINK_OPEN, 1)
    inside, after = rest.split(_THINK_CLOSE, 1)
    chunks: list[dict[str, Any]] = []
    if before:
        chunks.append({"type": "text", "text": before})
    chunks.append({"type": "thinking", "thinking": [{"type": "text", "text": inside}],
                   "closed": True})
    if after:
        chunks.append({"type": "text", "text": after})
    return {"role": "system", "content": chunks}


def resolve_settings(profile: Profile | None, flags: Mapping[str, Any],
                     defaults: Mapping[str, Any] = _EMPTY) -> dict[str, Setting]:
    """Decide each request setting and record where it came from.

    For each of ``SETTING_KEYS``: a flag that is not ``None`` wins (origin ``"flag"``), then
    the profile's non-``None`` value (origin ``"profile <name>"``, with its source), then
    ``defaults[key]`` when not ``None`` (origin ``"task default"``), else
    ``Setting(None, "server default", None)``: the field is not sent.

    Args:
        profile: the profile in force, or ``None``.
        flags: the user's values; missing keys and ``None`` values mean "not given". A flag
            cannot force "send nothing": a ``0``/``""`` flag is a value and is sent.
        defaults: the task's own defaults.

    Example:
        >>> s = resolve_settings(get_profile("qwq"), {"top_k": 40})
        >>> s["top_k"].value, s["top_k"].origin, s["top_p"].origin
        (40, 'flag', 'profile qwq')
    """
    resolved: dict[str, Setting] = {}
    for key in SETTING_KEYS:
        flag = flags.get(key)
        from_profile = getattr(profile, key) if profile is not None else None
        if flag is not None:
            resolved[key] = Setting(flag, "flag", None)
        elif profile is not None and from_profile is not None:
            resolved[key] = Setting(from_profile, f"profile {profile.name}",
                                    profile.source_of(key))
        elif defaults.get(key) is not None:
            resolved[key] = Setting(defaults[key], "task default", None)
        else:
            resolved[key] = Setting(None, "server default", None)
    return resolved
