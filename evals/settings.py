"""What each request of a run carries, and where each value came from.

A value comes from, in order of precedence: a flag (or the Python API's field), the
suite's entry for the task, the model's profile (``evals.profiles``), the task's default;
otherwise the field is not sent and the server's default applies. The manifest records
each value with its origin and, for profile values, its citation, so a gap to a published
number can be traced to the setting that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evals.profiles import Profile, Setting, get_profile, profile_for_model, resolve_settings

__all__ = ["TaskRequest", "choose_profile", "task_request"]


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """The request settings of one task in a run.

    Attributes:
        settings: per field (temperature, top_p, top_k, max_tokens, system_prompt), the
            value and where it came from.
        system: the system message put before every prompt (``None``: none).
        stop: stop sequences sent with every request (the flag's, then the protocol's).
        extra: other body fields from the profile (e.g. ``reasoning_effort``).
    """

    settings: Mapping[str, Setting]
    system: dict[str, Any] | None
    stop: tuple[str, ...]
    extra: tuple[tuple[str, Any], ...]

    def value(self, name: str) -> Any:
        setting = self.settings.get(name)
        return setting.value if setting is not None else None

    def fields(self) -> dict[str, Any]:
        """The sampling fields of the body (only those with a value)."""
        body: dict[str, Any] = {}
        for name in ("max_tokens", "temperature", "top_p", "top_k"):
            value = self.value(name)
            if value is not None:
                body[name] = value
        if self.stop:
            body["stop"] = list(self.stop)
        body.update(self.extra)
        return body

    def public(self) -> dict[str, Any]:
        """For the manifest: each setting with its origin and source, and what else is sent."""
        out: dict[str, Any] = {
            name: {"value": s.value, "origin": s.origin, **({"source": s.source}
                                                             if s.source else {})}
            for name, s in self.settings.items()
        }
        out["stop"] = list(self.stop)
        if self.extra:
            out["extra_body"] = dict(self.extra)
        return out


def choose_profile(name: str | None, model: str) -> Profile | None:
    """The profile asked for by name, ``None`` for ``"none"``, else the one the model's
    name matches (``None`` when no profile matches).

    Raises:
        ConfigError: an unknown profile name (with suggestions).
    """
    if name is not None:
        return None if name.lower() == "none" else get_profile(name)
    return profile_for_model(model)


def task_request(
    profile: Profile | None,
    provider: str | None,
    *,
    flags: Mapping[str, Any],
    suite: Mapping[str, Any] | None = None,
    task_defaults: Mapping[str, Any] | None = None,
    suite_name: str | None = None,
    stop: tuple[str, ...] = (),
    task_stop: tuple[str, ...] = (),
) -> TaskRequest:
    """Resolve one task's request settings.

    Args:
        profile: the model's profile, or ``None``.
        provider: the provider preset (how a profile's system prompt is encoded).
        flags: the user's values (``None``: not given) for temperature, top_p, top_k,
            max_tokens, system_prompt.
        suite: the suite's values for this task (``max_tokens``), if run from a suite.
        task_defaults: the task's own defaults (``max_tokens``).
        suite_name: for the origin of suite values.
        stop: the user's stop sequences; ``task_stop``: the prompt protocol's.
    """
    from evals.profiles import system_message

    given = dict(flags)
    from_suite = {k: v for k, v in (suite or {}).items() if v is not None
                  and given.get(k) is None}
    given.update(from_suite)
    settings = dict(resolve_settings(profile, given, dict(task_defaults or {})))
    for name, value in from_suite.items():
        settings[name] = Setting(value, f"suite {suite_name or '?'}", None)
    system: dict[str, Any] | None = None
    if flags.get("system_prompt") is not None:
        system = {"role": "system", "content": flags["system_prompt"]}
    elif profile is not None and profile.system_prompt:
        system = system_message(profile, provider)
    extra = profile.extra_body if profile is not None else ()
    stops = tuple(dict.fromkeys((*stop, *task_stop)))
    return TaskRequest(settings, system, stops, tuple(extra))
