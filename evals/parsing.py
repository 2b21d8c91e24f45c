"""Reading chat-completion bodies: the answer, the reasoning, usage, errors.

Every provider puts reasoning somewhere else (see shared/reference/openai-compatible-formats.md
section 9): a ``reasoning_content`` field (vLLM <= 0.11, DeepSeek, SGLang, llama.cpp), a
``reasoning`` field (OpenRouter, Together, Ollama, vLLM >= 0.11), Mistral's list of content
chunks with ``thinking`` chunks, or tags inside the text (``<think>``, ``[THINK]``). This
module turns all of them into (answer, reasoning, unclosed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from evals.records import Usage

__all__ = [
    "Completion",
    "MalformedBody",
    "StreamAccumulator",
    "assemble_answer",
    "body_error",
    "parse_completion",
    "split_think_tags",
    "usage_from",
]

_TAGS = (("<think>", "</think>"), ("[THINK]", "[/THINK]"))


class MalformedBody(ValueError):
    """A 200 answer whose body is not a chat completion (retryable)."""


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    reasoning: str | None
    finish_reason: str | None
    usage: Usage
    unclosed: bool
    model: str | None


def split_think_tags(text: str) -> tuple[str, str | None, bool]:
    """Separate inline reasoning tags from the answer.

    Handles ``<think>...</think>`` and ``[THINK]...[/THINK]``, and a lone closing tag (the
    chat template put the opener in the prompt, so the text before it is reasoning).

    Returns:
        (answer, reasoning or None, unclosed) where ``unclosed`` means an opening tag had no
        closing tag: everything after it is reasoning and the answer is what came before.

    Example:
        >>> split_think_tags("<think>6*7</think>42")
        ('42', '6*7', False)
    """
    for opener, closer in _TAGS:
        close_at = text.rfind(closer)
        open_at = text.find(opener)
        if close_at >= 0:
            start = open_at + len(opener) if 0 <= open_at < close_at else 0
            prefix = text[:open_at] if 0 <= open_at < close_at else ""
            reasoning = text[start:close_at].strip()
            answer = (prefix + text[close_at + len(closer) :]).strip()
            return answer, reasoning, False
        if open_at >= 0:
            return text[:open_at].strip(), text[open_at + len(opener) :].strip(), True
    return text, None, False


def _text_of_content(content: Any) -> tuple[str, str]:
    """(answer, reasoning) of a message ``content`` that may be a Mistral chunk list."""
    if isinstance(content, str):
        return content, ""
    if not isinstance(content, list):
        return "", ""
    answer: list[str] = []
    reasoning: list[str] = []
    for chunk in content:
        if not isinstance(chunk, dict):
            continue
        kind = chunk.get("type")
        if kind == "text":
            answer.append(chunk.get("text") or "")
        elif kind == "thinking":
            for inner in chunk.get("thinking") or ():
                if isinstance(inner, dict) and inner.get("type") == "text":
                    reasoning.append(inner.get("text") or "")
    return "".join(answer), "".join(reasoning)


def _field_reasoning(obj: dict[str, Any]) -> str | None:
    for key in ("reasoning", "reasoning_content"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def usage_from(raw: Any) -> Usage:
    """A ``Usage`` from the body's ``usage`` object, tolerating absent or null parts."""
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    cost = raw.get("cost")
    return Usage(
        prompt_tokens=_int_or_none(raw.get("prompt_tokens")),
        completion_tokens=_int_or_none(raw.get("completion_tokens")),
        reasoning_tokens=_int_or_none(reasoning),
        cost=float(cost) if isinstance(cost, (int, float)) else None,
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def body_error(body: Any) -> str | None:
    """The error message carried by a body, in any of the shapes servers use, or None.

    Shapes: ``{"error": {...}}``, ``{"error": "..."}``, flat ``{"object": "error",
    "message": ...}``, ``{"detail": ...}``, ``{"message": ...}`` with no ``choices``.
    """
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err.get("code") or err)
    if isinstance(err, str) and err:
        return err
    if body.get("object") == "error":
        return str(body.get("message") or body)
    if "choices" not in body:
        for key in ("detail", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return None


def _finish(reason: Any) -> str | None:
    return reason if isinstance(reason, str) and reason else None


def assemble_answer(
    content: str, field_reasoning: str, chunk_reasoning: str = ""
) -> tuple[str, str | None, bool]:
    """The answer text, the reasoning and whether a think tag was left open, from a
    message's content and the reasoning its fields (or thinking chunks) carried; shared by
    live runs and ``evals grade``."""
    reasoning_parts = [r for r in (chunk_reasoning, field_reasoning) if r]
    # Tags are always cut out of the answer; their text counts as reasoning only when no
    # field carried it (llama.cpp's deepseek-legacy sends the same thoughts both ways).
    text, inline, unclosed = split_think_tags(content)
    if inline is not None and not reasoning_parts:
        reasoning_parts.append(inline)
    reasoning = "\n".join(reasoning_parts) if reasoning_parts else None
    return text.strip(), reasoning, unclosed


def parse_completion(body: Any) -> Completion:
    """Parse a non-streaming chat completion.

    Raises:
        MalformedBody: no ``choices[0].message`` (or an error object inside a 200).
    """
    if not isinstance(body, dict):
        raise MalformedBody(f"expected a JSON object, got {type(body).__name__}")
    err = body_error(body)
    if err is not None:
        raise MalformedBody(f"error inside a 200 answer: {err[:200]}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedBody("no choices in the body")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedBody("choices[0] has no message")
    finish = _finish(choices[0].get("finish_reason"))
    if finish == "error":
        raise MalformedBody("finish_reason is 'error'")
    answer, chunk_reasoning = _text_of_content(message.get("content"))
    text, reasoning, unclosed = assemble_answer(answer, _field_reasoning(message) or "", chunk_reasoning)
    model = body.get("model")
    return Completion(
        text=text,
        reasoning=reasoning,
        finish_reason=finish,
        usage=usage_from(body.get("usage")),
        unclosed=unclosed,
        model=model if isinstance(model, str) else None,
    )


class StreamAccumulator:
    """Accumulates SSE ``data:`` events of one streamed completion (choice 0).

    Feed raw bytes with ``feed``; it splits lines itself (tags and events may be split
    across network reads). ``done`` becomes true at ``data: [DONE]``.
    """

    __slots__ = (
        "_buffer",
        "_chunk_reasoning",
        "_content",
        "_field_reasoning",
        "done",
        "finish_reason",
        "first_token",
        "model",
        "usage",
    )

    def __init__(self) -> None:
        self._buffer = b""
        self._content: list[str] = []
        self._field_reasoning: list[str] = []
        self._chunk_reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Usage = Usage()
        self.model: str | None = None
        self.done = False
        self.first_token = False

    def feed(self, data: bytes) -> None:
        """Consume bytes; raises ``MalformedBody`` on an error event or bad JSON."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue  # comments (": keep-alive"), event:, id:, blank lines
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                continue
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise MalformedBody(f"bad JSON in stream event: {payload[:80]!r}") from exc
            self._event(event)

    def _event(self, event: Any) -> None:
        err = body_error(event)
        if err is not None:
            raise MalformedBody(f"error event in stream: {err[:200]}")
        if not isinstance(event, dict):
            raise MalformedBody("stream event is not an object")
        if event.get("usage"):
            self.usage = usage_from(event["usage"])
        if isinstance(event.get("model"), str):
            self.model = event["model"]
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str):
                if content:
                    self._content.append(content)
                    self.first_token = True
            elif content is not None:
                answer, reasoning = _text_of_content(content)
                if answer:
                    self._content.append(answer)
                if reasoning:
                    self._chunk_reasoning.append(reasoning)
                self.first_token = self.first_token or bool(answer or reasoning)
            reasoning_field = _field_reasoning(delta)
            if reasoning_field:
                self._field_reasoning.append(reasoning_field)
                self.first_token = True
            finish = _finish(choice.get("finish_reason"))
            if finish == "error":
                raise MalformedBody("finish_reason is 'error' in stream")
            if finish:
                self.finish_reason = finish

    def result(self) -> Completion:
        """The completion so far. Raises ``MalformedBody`` if the stream never finished."""
        if self._buffer.strip():
            self.feed(b"\n")
        if self.finish_reason is None:
            raise MalformedBody("stream ended without a finish_reason")
        text, reasoning, unclosed = assemble_answer(
            "".join(self._content),
            "".join(self._field_reasoning),
            "".join(self._chunk_reasoning),
        )
        return Completion(text, reasoning, self.finish_reason, self.usage, unclosed, self.model)
