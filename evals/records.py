"""The frozen records that flow through the pipeline.

``Sample`` (one problem) x repeat -> ``Attempt`` (one request to make) -> ``Response``
(what came back) -> ``Grade`` (what the grader decided). The per-attempt table is made of
these, flattened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "OUTCOMES",
    "SCORED_OUTCOMES",
    "Attempt",
    "Grade",
    "Message",
    "Outcome",
    "Response",
    "Sample",
    "Usage",
]

Message = dict[str, str]

Outcome = Literal[
    "answered",  # finished normally with an answer
    "truncated",  # finish_reason == "length"
    "reasoning_unclosed",  # an opening think tag was never closed (and not truncated)
    "empty",  # finished normally with an empty answer
    "error",  # the request failed after its retries: not scored
    "grading_failed",  # the grader could not decide: not scored
]

OUTCOMES: tuple[Outcome, ...] = (
    "answered",
    "truncated",
    "reasoning_unclosed",
    "empty",
    "error",
    "grading_failed",
)

#: Outcomes that count in the score: everything the model actually produced. A model that
#: runs out of tokens or answers nothing is wrong, but a failed request says nothing about
#: the model, so it is excluded (and retried on the next run).
SCORED_OUTCOMES: frozenset[Outcome] = frozenset(
    {"answered", "truncated", "reasoning_unclosed", "empty"}
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One problem of a task.

    Attributes:
        id: the problem's id in its dataset (stable across runs; used by ``evals grade``).
        messages: the chat messages sent to the model.
        target: the gold answer, as a string.
        metadata: extra fields kept in the per-attempt table (subset, year, ...).
    """

    id: str
    messages: tuple[tuple[str, str], ...]
    target: str
    metadata: tuple[tuple[str, str | int | float | None], ...] = ()

    def chat(self) -> list[Message]:
        """The messages in the wire format."""
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One (sample, repeat) to ask the model, with its own seed."""

    task: str
    sample: Sample
    repeat: int
    seed: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the endpoint reported them; ``None`` where it did not."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """What the endpoint answered, with reasoning separated from the answer.

    Attributes:
        text: the answer the graders see (reasoning removed).
        reasoning: the separated reasoning, or ``None`` when the endpoint gave none.
        finish_reason: as reported (``"stop"``, ``"length"``, ...), or ``None``.
        reasoning_unclosed: an opening think tag was found with no closing tag.
        latency_s: wall time of the successful request.
        ttft_s: time to the first token (streaming only).
        retries: how many extra sends it took.
        model: the model name the endpoint reported.
        simulated: the answer came from ``evals simulate``, not a model.
        endpoint: the base URL of the endpoint that answered (a run may have several).
    """

    text: str
    reasoning: str | None
    finish_reason: str | None
    usage: Usage = field(default_factory=Usage)
    reasoning_unclosed: bool = False
    latency_s: float = 0.0
    ttft_s: float | None = None
    retries: int = 0
    model: str | None = None
    simulated: bool = False
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class Grade:
    """The grader's verdict on one response.

    Attributes:
        extracted: the answer found in the response, or ``None``.
        correct: the verdict; ``None`` when the grader could not decide.
        reason: why, in a few words ("match", "no answer found", "timeout", ...).
        details: whatever else lets a researcher audit the verdict (normalised forms, the
            failing test, the time limit used, ...); plain JSON-serialisable values. It
            lands in the per-attempt table's ``details`` column as JSON.
    """

    extracted: str | None
    correct: bool | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
