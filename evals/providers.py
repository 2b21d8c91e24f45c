"""Provider presets: where each hosted API or local server lives and how it differs.

A preset gives the base URL, the environment variable that holds the key, and the few
request-shape quirks that matter (Mistral calls the seed ``random_seed`` and rejects
``stream_options``). ``--base-url`` and ``--api-key-env`` override any preset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from evals.errors import ConfigError, did_you_mean

__all__ = [
    "PROVIDERS",
    "Endpoint",
    "Provider",
    "base_url_list",
    "normalise_base_url",
    "proxy_for",
    "resolve_endpoint",
    "resolve_endpoints",
]


@dataclass(frozen=True, slots=True)
class Provider:
    """One preset.

    Attributes:
        name: the ``--provider`` value.
        base_url: the OpenAI-compatible root, ending in ``/v1`` (or the provider's equivalent).
        key_env: the environment variable holding the key; ``None`` for servers without keys.
        key_required: hosted APIs need a key; local servers usually do not.
        seed_field: the request field for the sampling seed.
        stream_usage: whether to send ``stream_options.include_usage`` when streaming.
        note: a one-line hint shown by ``evals list``.
    """

    name: str
    base_url: str
    key_env: str | None
    key_required: bool = True
    seed_field: str = "seed"
    stream_usage: bool = True
    note: str = ""


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        Provider(
            "mistral",
            "https://api.mistral.ai/v1",
            "MISTRAL_API_KEY",
            seed_field="random_seed",
            stream_usage=False,
            note="Magistral thinking chunks are separated from the answer",
        ),
        Provider(
            "puter",
            "https://api.puter.com/puterai/openai/v1",
            "PUTER_AUTH_TOKEN",
            note="the key is your Puter auth token (puter.com/dashboard -> Copy)",
        ),
        Provider("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        Provider("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        Provider("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        Provider("vllm", "http://localhost:8000/v1", "VLLM_API_KEY", key_required=False),
        Provider("sglang", "http://localhost:30000/v1", "SGLANG_API_KEY", key_required=False),
        Provider("llamacpp", "http://localhost:8080/v1", "LLAMACPP_API_KEY", key_required=False),
        Provider("ollama", "http://localhost:11434/v1", "OLLAMA_API_KEY", key_required=False),
        Provider("lmstudio", "http://localhost:1234/v1", "LMSTUDIO_API_KEY", key_required=False),
        Provider(
            "simulator",
            "http://127.0.0.1:8765/v1",
            None,
            key_required=False,
            note="evals simulate: the built-in simulated model server",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved endpoint. The key never appears in ``repr`` or in ``public()``."""

    provider: str
    base_url: str
    key_env: str | None
    api_key: str | None = field(default=None, repr=False)
    seed_field: str = "seed"
    stream_usage: bool = True

    def public(self) -> dict[str, str | None]:
        """What may be written to a manifest: everything but the key."""
        return {"provider": self.provider, "base_url": self.base_url, "key_env": self.key_env}


def _check_url(url: str) -> None:
    """A base URL the client can use: http(s), a host, a valid port."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(
            f"--base-url {url!r} is not an http(s) URL with a host. Write it in full, e.g. "
            "--base-url http://127.0.0.1:8000/v1."
        )


def resolve_endpoint(
    provider: str | None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    environ: dict[str, str] | None = None,
) -> Endpoint:
    """Turn ``--provider`` / ``--base-url`` / ``--api-key-env`` into an ``Endpoint``.

    Args:
        provider: a preset name, or ``None`` when ``base_url`` is given alone (a generic
            OpenAI-compatible server; the key is read from ``api_key_env`` if given).
        base_url: overrides the preset's URL.
        api_key_env: overrides the preset's key variable.
        environ: the environment to read (default ``os.environ``).

    Raises:
        ConfigError: unknown provider, neither provider nor URL, a URL that is not
            http(s) with a host, or a hosted provider whose key variable is unset (the
            message names the variable, never a value).
    """
    env = os.environ if environ is None else environ
    if provider is None and base_url is None:
        raise ConfigError(
            "No endpoint: pass --provider NAME (one of "
            f"{', '.join(PROVIDERS)}) or --base-url URL of an OpenAI-compatible server."
        )
    if provider is not None and provider not in PROVIDERS:
        raise ConfigError(
            f"Unknown provider {provider!r}.{did_you_mean(provider, PROVIDERS)} "
            f"Known providers: {', '.join(PROVIDERS)}; or pass --base-url URL."
        )
    preset = PROVIDERS[provider] if provider else Provider("custom", "", None, key_required=False)
    key_env = api_key_env or preset.key_env
    api_key = env.get(key_env) if key_env else None
    if api_key == "":
        api_key = None
    if api_key is None and api_key_env is not None:
        raise ConfigError(
            f"--api-key-env {api_key_env} names an environment variable that is not set. "
            f"Export it first: export {api_key_env}=..."
        )
    if api_key is None and preset.key_required and key_env:
        raise ConfigError(
            f"Provider {preset.name!r} needs an API key in the environment variable {key_env}, "
            f"which is not set. Export it (export {key_env}=...) or name another variable "
            "with --api-key-env."
        )
    url = (base_url or preset.base_url).rstrip("/")
    _check_url(url)
    return Endpoint(
        provider=preset.name,
        base_url=url,
        key_env=key_env,
        api_key=api_key,
        seed_field=preset.seed_field,
        stream_usage=preset.stream_usage,
    )


def normalise_base_url(value: object) -> str | tuple[str, ...] | None:
    """``RunConfig.base_url`` as given (a URL, or a list or tuple of them) in its stored
    form: one URL as a string (so a one-endpoint run keeps its run folder), several as a
    tuple, none as None.

    Example: ``normalise_base_url(["http://a/v1"])`` is ``"http://a/v1"``.
    """
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, (list, tuple)):
        urls = tuple(str(v) for v in value)
        return urls[0] if len(urls) == 1 else urls or None
    raise ConfigError(f"base_url {value!r}: give a URL or a list of URLs.")


def base_url_list(value: str | tuple[str, ...] | None) -> tuple[str | None, ...]:
    """The URLs of a normalised ``base_url``; ``(None,)`` when there is none (the
    provider's own URL)."""
    if value is None:
        return (None,)
    return (value,) if isinstance(value, str) else value


def resolve_endpoints(
    provider: str | None,
    base_url: str | tuple[str, ...] | None = None,
    api_key_env: str | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[Endpoint, ...]:
    """``resolve_endpoint`` for each of several base URLs (replicas serving one model,
    sharing the provider preset and the key).

    Raises:
        ConfigError: as ``resolve_endpoint``; or the same URL given twice.
    """
    endpoints = tuple(resolve_endpoint(provider, url, api_key_env, environ)
                      for url in base_url_list(base_url))
    seen: set[str] = set()
    for e in endpoints:
        if e.base_url in seen:
            raise ConfigError(f"--base-url {e.base_url} is given twice; give each endpoint "
                              "once.")
        seen.add(e.base_url)
    return endpoints


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url``, or None: ``HTTPS_PROXY`` for https,
    ``HTTP_PROXY`` for http, else ``ALL_PROXY`` (any case), unless ``NO_PROXY`` lists the
    host. Read by the standard library (``urllib.request``), as aiohttp and ``requests``
    read it.

    Example: with ``HTTPS_PROXY=http://proxy:3128`` and ``NO_PROXY=localhost``,
    ``proxy_for("https://api.openai.com/v1")`` is ``"http://proxy:3128"`` and
    ``proxy_for("https://localhost:8000/v1")`` is None.
    """
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # the common case, without importing urllib.request
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all") or None
