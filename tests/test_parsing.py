"""Unit tests of evals.parsing against the shapes of the wire-format reference.

Every body and SSE transcript below is copied from
``shared/reference/openai-compatible-formats.md`` (cited as "§N.M") unless its id says it is a
variant; variants change only what the id names.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from evals.parsing import (
    Completion,
    MalformedBody,
    StreamAccumulator,
    body_error,
    parse_completion,
    split_think_tags,
    usage_from,
)
from evals.records import Usage

# ---------------------------------------------------------------------------------------------
# Non-streaming bodies
# ---------------------------------------------------------------------------------------------

OPENAI_BODY = {  # §1.2
    "id": "chatcmpl-AbC123",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "o4-mini-2025-04-16",
    "system_fingerprint": "fp_0a1b2c3d4e",
    "service_tier": "default",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "42", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "completion_tokens": 204,
        "total_tokens": 218,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 192,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}


def _openai_truncated() -> dict[str, Any]:
    """§1.4: the whole budget spent on reasoning -> content "" with finish_reason length."""
    body = orjson.loads(orjson.dumps(OPENAI_BODY))
    body["choices"][0]["message"]["content"] = ""
    body["choices"][0]["finish_reason"] = "length"
    return body


VLLM_BODY = {  # §2.3 (current field name)
    "id": "chatcmpl-5e1f",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "Qwen/Qwen3-8B",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning": "The user asks 6*7. 6*7 = 42.",
                "content": "42",
                "tool_calls": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
            "stop_reason": None,
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "total_tokens": 52,
        "completion_tokens": 38,
        "prompt_tokens_details": None,
    },
}


def _vllm_old_field() -> dict[str, Any]:
    """§2.3 "Before the rename the same object carries reasoning_content instead"."""
    body = orjson.loads(orjson.dumps(VLLM_BODY))
    message = body["choices"][0]["message"]
    message["reasoning_content"] = message.pop("reasoning")
    return body


def _vllm_r1_truncated() -> dict[str, Any]:
    """§2.5 deepseek_r1 parser: no </think> -> everything is reasoning, content null, length."""
    body = orjson.loads(orjson.dumps(VLLM_BODY))
    body["choices"][0]["message"] = {
        "role": "assistant",
        "reasoning": "The user asks 6*7. Let me multiply",
        "content": None,
    }
    body["choices"][0]["finish_reason"] = "length"
    return body


DEEPSEEK_BODY = {  # §4.1
    "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "deepseek-reasoner",
    "system_fingerprint": "fp_7e73fd9a08",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": "6*7: six sevens are 42.",
                "content": "42",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "completion_tokens": 120,
        "total_tokens": 134,
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 14,
        "completion_tokens_details": {"reasoning_tokens": 110},
    },
}

OPENROUTER_BODY = {  # §4.2
    "id": "gen-1735689600-AbCdEf",
    "provider": "DeepInfra",
    "model": "deepseek/deepseek-r1",
    "object": "chat.completion",
    "created": 1735689600,
    "choices": [
        {
            "index": 0,
            "logprobs": None,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": "42",
                "refusal": None,
                "reasoning": "6*7: six sevens are 42.",
                "reasoning_details": [
                    {
                        "type": "reasoning.text",
                        "text": "6*7: six sevens are 42.",
                        "format": "unknown",
                        "index": 0,
                    }
                ],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "completion_tokens": 120,
        "total_tokens": 134,
        "cost": 0.000264,
        "cost_details": {"upstream_inference_cost": None},
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 110},
    },
}

MISTRAL_BODY = {  # §5.2
    "id": "d3564afe820340acba2a282db61ed58c",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "magistral-small-2509",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "tool_calls": None,
                "prefix": False,
                "content": [
                    {
                        "type": "thinking",
                        "thinking": [{"type": "text", "text": "The user wants 6*7. That is 42."}],
                    },
                    {"type": "text", "text": "6 × 7 = **42**."},
                ],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 412,
        "completion_tokens": 38,
        "total_tokens": 450,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
}


def _mistral_with_reference_chunk() -> dict[str, Any]:
    """§5.2: "thinking items can also be reference chunks (skip them)"."""
    body = orjson.loads(orjson.dumps(MISTRAL_BODY))
    body["choices"][0]["message"]["content"][0]["thinking"] = [
        {"type": "text", "text": "The user wants 6*7."},
        {"type": "reference", "reference_ids": [0, 1]},
        {"type": "text", "text": " That is 42."},
    ]
    return body


MISTRAL_TRUNCATED_BODY = {  # §5.2 truncation, observed choice wrapped in a minimal envelope
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "length",
            "message": {
                "role": "assistant",
                "tool_calls": None,
                "prefix": False,
                "content": [
                    {
                        "type": "thinking",
                        "closed": True,
                        "thinking": [
                            {
                                "type": "text",
                                "text": "Okay, dolphins are marine mammals known for their",
                            }
                        ],
                    }
                ],
            },
        }
    ],
}


def _message_body(content: Any, finish: str | None = "stop", **extra: Any) -> dict[str, Any]:
    """A minimal envelope around one assistant message (for content-only shapes)."""
    message = {"role": "assistant", "content": content, **extra}
    return {"object": "chat.completion", "choices": [{"index": 0, "message": message,
                                                      "finish_reason": finish}]}


PARSE_CASES = [
    pytest.param(
        OPENAI_BODY,
        Completion("42", None, "stop", Usage(14, 204, 192, None), False, "o4-mini-2025-04-16"),
        id="§1.2 OpenAI: no reasoning text, reasoning_tokens in usage",
    ),
    pytest.param(
        _openai_truncated(),
        Completion("", None, "length", Usage(14, 204, 192, None), False, "o4-mini-2025-04-16"),
        id="§1.4 OpenAI truncated: content '' finish length",
    ),
    pytest.param(
        VLLM_BODY,
        Completion("42", "The user asks 6*7. 6*7 = 42.", "stop", Usage(14, 38, None, None),
                   False, "Qwen/Qwen3-8B"),
        id="§2.3 vLLM >=0.11 message.reasoning",
    ),
    pytest.param(
        _vllm_old_field(),
        Completion("42", "The user asks 6*7. 6*7 = 42.", "stop", Usage(14, 38, None, None),
                   False, "Qwen/Qwen3-8B"),
        id="§2.3 vLLM <=0.11 message.reasoning_content",
    ),
    pytest.param(
        _vllm_r1_truncated(),
        Completion("", "The user asks 6*7. Let me multiply", "length", Usage(14, 38, None, None),
                   False, "Qwen/Qwen3-8B"),
        id="§2.5 vLLM deepseek_r1 truncated: reasoning only, content null",
    ),
    pytest.param(
        DEEPSEEK_BODY,
        Completion("42", "6*7: six sevens are 42.", "stop", Usage(14, 120, 110, None), False,
                   "deepseek-reasoner"),
        id="§4.1 DeepSeek reasoning_content + completion_tokens_details",
    ),
    pytest.param(
        OPENROUTER_BODY,
        Completion("42", "6*7: six sevens are 42.", "stop", Usage(14, 120, 110, 0.000264), False,
                   "deepseek/deepseek-r1"),
        id="§4.2 OpenRouter reasoning + reasoning_details + cost",
    ),
    pytest.param(
        MISTRAL_BODY,
        Completion("6 × 7 = **42**.", "The user wants 6*7. That is 42.", "stop",
                   Usage(412, 38, None, None), False, "magistral-small-2509"),
        id="§5.2 Mistral list content: thinking chunk + text chunk",
    ),
    pytest.param(
        _mistral_with_reference_chunk(),
        Completion("6 × 7 = **42**.", "The user wants 6*7. That is 42.", "stop",
                   Usage(412, 38, None, None), False, "magistral-small-2509"),
        id="§5.2 Mistral reference chunk inside thinking is skipped",
    ),
    pytest.param(
        MISTRAL_TRUNCATED_BODY,
        Completion("", "Okay, dolphins are marine mammals known for their", "length", Usage(),
                   False, None),
        id="§5.2 Mistral truncation: only a thinking chunk (closed true), finish length",
    ),
    pytest.param(
        _message_body("6 × 7 = **42**."),
        Completion("6 × 7 = **42**.", None, "stop", Usage(), False, None),
        id="§5.2 Mistral plain string content (reasoning_effort none)",
    ),
    pytest.param(
        _message_body("[THINK]The user wants 6*7. That is 42.[/THINK]6 × 7 = **42**."),
        Completion("6 × 7 = **42**.", "The user wants 6*7. That is 42.", "stop", Usage(), False,
                   None),
        id="§5.5 raw [THINK]...[/THINK] in content",
    ),
    pytest.param(
        _message_body("<think>\nThe user wants 6*7. That is 42.\n</think>\n6 × 7 = **42**."),
        Completion("6 × 7 = **42**.", "The user wants 6*7. That is 42.", "stop", Usage(), False,
                   None),
        id="§5.1 Magistral 2506 <think>...</think> in string content",
    ),
    pytest.param(
        _message_body("The user asks 6*7. 6*7 = 42.\n</think>\n\n42"),
        Completion("42", "The user asks 6*7. 6*7 = 42.", "stop", Usage(), False, None),
        id="§2.5/§9.3 only a closing </think> (opener in the prompt)",
    ),
    pytest.param(
        _message_body("<think>\nThe user asks 6*7. Let me", finish="length"),
        Completion("", "The user asks 6*7. Let me", "length", Usage(), True, None),
        id="§2.5 old qwen3 parser: unclosed <think> in content",
    ),
    pytest.param(
        _message_body("[THINK]The user wants 6*7. Let", finish="length"),
        Completion("", "The user wants 6*7. Let", "length", Usage(), True, None),
        id="§2.5 mistral: [THINK] with no [/THINK]",
    ),
    pytest.param(
        _message_body(None, finish="length"),
        Completion("", None, "length", Usage(), False, None),
        id="§2.5/§10 content null with finish_reason length",
    ),
    pytest.param(
        _message_body("42", finish=""),
        Completion("42", None, None, Usage(), False, None),
        id="§3.3 Ollama finish_reason '' counts as none",
    ),
]


@pytest.mark.parametrize(("body", "expected"), PARSE_CASES)
def test_parse_completion_extracts_reasoning(body: dict[str, Any], expected: Completion) -> None:
    assert parse_completion(body) == expected


def test_parse_completion_deepseek_legacy_does_not_duplicate_reasoning() -> None:
    # §3.2 llama.cpp deepseek-legacy: "keep <think> tags in content and fill reasoning_content"
    body = _message_body("<think>6*7 = 42</think>42", reasoning_content="6*7 = 42")
    completion = parse_completion(body)
    assert completion.text == "42"
    assert completion.reasoning == "6*7 = 42"  # actual: "6*7 = 42\n6*7 = 42"


# ---------------------------------------------------------------------------------------------
# Error bodies
# ---------------------------------------------------------------------------------------------

ERROR_BODIES = [
    pytest.param(
        {"error": {"message": "This model's maximum context length is 128000 tokens. However, "
                   "your messages resulted in 130512 tokens. Please reduce the length of the "
                   "messages.", "type": "invalid_request_error", "param": "messages",
                   "code": "context_length_exceeded"}},
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 130512 tokens. Please reduce the length of the messages.",
        id="§7.1 OpenAI nested error object",
    ),
    pytest.param(
        {"error": {"message": "You exceeded your current quota, please check your plan and "
                   "billing details.", "type": "insufficient_quota", "param": None,
                   "code": "insufficient_quota"}},
        "You exceeded your current quota, please check your plan and billing details.",
        id="§7.1 OpenAI 429 insufficient_quota",
    ),
    pytest.param(
        {"error": "Unauthorized"},
        "Unauthorized",
        id="§2.8/§7.3 vLLM 401 error as a string",
    ),
    pytest.param(
        {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError",
                   "param": None, "code": 404}},
        "The model `x` does not exist.",
        id="§7.3 vLLM >=0.10.1 404 nested, int code",
    ),
    pytest.param(
        {"object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError",
         "param": None, "code": 404},
        "The model `x` does not exist.",
        id="§7.3 vLLM <0.10.1 flat object=error",
    ),
    pytest.param(
        {"error": {"code": 400, "type": "exceed_context_size_error",
                   "message": "request (9412 tokens) exceeds the available context size (8192 "
                   "tokens), try increasing it", "n_prompt_tokens": 9412, "n_ctx": 8192}},
        "request (9412 tokens) exceeds the available context size (8192 tokens), try "
        "increasing it",
        id="§3.2 llama.cpp exceed_context_size_error",
    ),
    pytest.param(
        {"error": {"message": "x is not a valid model ID", "code": 400}, "user_id": "user_123"},
        "x is not a valid model ID",
        id="§7.3 OpenRouter 400 invalid model with user_id",
    ),
    pytest.param(
        {"error": {"code": 502}},
        "502",
        id="§7.5 error object with only an int code",
    ),
    pytest.param(
        {"object": "error", "message": "Invalid model: magistral-smal-2509",
         "type": "invalid_model", "param": None, "code": "1500"},
        "Invalid model: magistral-smal-2509",
        id="§5.4 Mistral flat invalid_model",
    ),
    pytest.param(
        {"object": "error", "message": "Rate limit exceeded", "type": "rate_limited",
         "param": None, "code": "1300"},
        "Rate limit exceeded",
        id="§5.4 Mistral flat rate_limited",
    ),
    pytest.param(
        {"message": "Requests rate limit exceeded"},
        "Requests rate limit exceeded",
        id="§5.4 Mistral {message} only",
    ),
    pytest.param(
        {"detail": "Unauthorized"},
        "Unauthorized",
        id="§5.4 Mistral 401 {detail}",
    ),
    pytest.param(
        {"message": "Unauthorized", "request_id": "933f233947ff6d346065bb297e4a4d56"},
        "Unauthorized",
        id="§5.4 Mistral 401 {message, request_id}",
    ),
    pytest.param(
        {"success": False, "error": "insufficient funds"},
        "insufficient funds",
        id="§6 Puter native {success false, error} inside a 200",
    ),
]


@pytest.mark.parametrize(("body", "message"), ERROR_BODIES)
def test_body_error_finds_the_message(body: dict[str, Any], message: str) -> None:
    assert body_error(body) == message


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(OPENAI_BODY, id="§1.2 OpenAI completion"),
        pytest.param(MISTRAL_BODY, id="§5.2 Mistral completion"),
        pytest.param({"id": "c", "object": "chat.completion.chunk", "choices": [],
                      "usage": {"prompt_tokens": 14}}, id="§1.3 usage chunk with choices []"),
        pytest.param({"error": None, "choices": []}, id="error key null"),
        pytest.param([{"error": "x"}], id="JSON list, not an object"),
        pytest.param("Unauthorized", id="bare string"),
    ],
)
def test_body_error_none_for_non_errors(body: Any) -> None:
    assert body_error(body) is None


@pytest.mark.parametrize(("body", "message"), ERROR_BODIES)
def test_parse_completion_rejects_error_inside_200(body: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_completion(body)
    assert str(info.value) == f"error inside a 200 answer: {message}"


OPENROUTER_ERROR_EVENT = (  # §7.5, one SSE event after tokens were sent
    '{"id":"cmpl-abc123","object":"chat.completion.chunk","created":1735689600,'
    '"model":"openai/gpt-4o","provider":"openai","error":{"code":"server_error",'
    '"message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":'
    '{"content":""},"finish_reason":"error"}]}'
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(orjson.loads(OPENROUTER_ERROR_EVENT),
                     "error inside a 200 answer: Provider disconnected unexpectedly",
                     id="§7.5 OpenRouter 200 body with error + finish_reason error"),
        pytest.param({"id": "x", "object": "chat.completion"}, "no choices in the body",
                     id="no choices key"),
        pytest.param({"id": "x", "choices": []}, "no choices in the body", id="choices []"),
        pytest.param({"id": "x", "choices": None}, "no choices in the body", id="choices null"),
        pytest.param({"id": "x", "choices": ["42"]}, "no choices in the body",
                     id="choices[0] not an object"),
        pytest.param({"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]},
                     "choices[0] has no message", id="choice without message"),
        pytest.param({"choices": [{"index": 0, "message": {"content": "4"},
                                   "finish_reason": "error"}]},
                     "finish_reason is 'error'", id="§7.5 finish_reason error without error"),
        pytest.param([OPENAI_BODY], "expected a JSON object, got list", id="JSON list"),
        pytest.param(None, "expected a JSON object, got NoneType", id="JSON null"),
    ],
)
def test_parse_completion_malformed(body: Any, message: str) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_completion(body)
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------
# usage_from and split_think_tags
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(OPENAI_BODY["usage"], Usage(14, 204, 192, None), id="§1.2 OpenAI"),
        pytest.param(VLLM_BODY["usage"], Usage(14, 38, None, None),
                     id="§2.3 vLLM, prompt_tokens_details null"),
        pytest.param(DEEPSEEK_BODY["usage"], Usage(14, 120, 110, None), id="§4.1 DeepSeek"),
        pytest.param(OPENROUTER_BODY["usage"], Usage(14, 120, 110, 0.000264),
                     id="§4.2 OpenRouter cost"),
        pytest.param(MISTRAL_BODY["usage"], Usage(412, 38, None, None), id="§5.2 Mistral"),
        pytest.param(None, Usage(), id="§1.3 chunk usage null"),
        pytest.param({"prompt_tokens": 3, "completion_tokens_details": None},
                     Usage(3, None, None, None), id="completion_tokens_details null"),
        pytest.param({"prompt_tokens": "14", "completion_tokens": True, "cost": "0.1"},
                     Usage(), id="strings and booleans are not counts"),
        pytest.param([14, 204], Usage(), id="not an object"),
    ],
)
def test_usage_from(raw: Any, expected: Usage) -> None:
    assert usage_from(raw) == expected


def test_usage_from_integer_cost_becomes_float() -> None:
    usage = usage_from({"prompt_tokens": 1, "completion_tokens": 2, "cost": 0})
    assert usage.cost == 0.0
    assert type(usage.cost) is float


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<think>6*7</think>42", ("42", "6*7", False), id="docstring example"),
        pytest.param("[THINK]6*7[/THINK]42", ("42", "6*7", False), id="§5.5 [THINK] pair"),
        pytest.param("6*7\n</think>\n\n42", ("42", "6*7", False),
                     id="§2.5 lone </think>, opener in prompt"),
        pytest.param("Sure. <think>6*7 is", ("Sure.", "6*7 is", True),
                     id="§2.5 unclosed <think>: text before it is the answer"),
        pytest.param("[THINK]6*7 is", ("", "6*7 is", True), id="§2.5 mistral unclosed [THINK]"),
        pytest.param("Intro<think>6*7</think> 42", ("Intro 42", "6*7", False),
                     id="text before and after the block both kept"),
        pytest.param("42", ("42", None, False), id="no tags"),
        pytest.param("", ("", None, False), id="empty"),
    ],
)
def test_split_think_tags(text: str, expected: tuple[str, str | None, bool]) -> None:
    assert split_think_tags(text) == expected


# ---------------------------------------------------------------------------------------------
# Streaming transcripts (exact text of the reference; blank lines are part of the wire format)
# ---------------------------------------------------------------------------------------------

OPENAI_STREAM = """\
data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1735689600,"model":"o4-mini-2025-04-16","system_fingerprint":"fp_0a1b2c3d4e","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1735689600,"model":"o4-mini-2025-04-16","system_fingerprint":"fp_0a1b2c3d4e","choices":[{"index":0,"delta":{"content":"4"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1735689600,"model":"o4-mini-2025-04-16","system_fingerprint":"fp_0a1b2c3d4e","choices":[{"index":0,"delta":{"content":"2"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1735689600,"model":"o4-mini-2025-04-16","system_fingerprint":"fp_0a1b2c3d4e","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1735689600,"model":"o4-mini-2025-04-16","system_fingerprint":"fp_0a1b2c3d4e","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":204,"total_tokens":218,"completion_tokens_details":{"reasoning_tokens":192}}}

data: [DONE]

"""

VLLM_STREAM = """\
data: {"id":"chatcmpl-5e1f","object":"chat.completion.chunk","created":1735689600,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-5e1f","object":"chat.completion.chunk","created":1735689600,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning":"The user asks 6*7."},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-5e1f","object":"chat.completion.chunk","created":1735689600,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning":" 6*7 = 42."},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-5e1f","object":"chat.completion.chunk","created":1735689600,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":"42"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-5e1f","object":"chat.completion.chunk","created":1735689600,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}

data: {"id":"chatcmpl-5e1f","object":"chat.completion.chunk","created":1735689600,"model":"Qwen/Qwen3-8B","choices":[],"usage":{"prompt_tokens":14,"total_tokens":52,"completion_tokens":38}}

data: [DONE]

"""

SGLANG_STREAM = """\
data: {"id":"chatcmpl-7c1","object":"chat.completion.chunk","created":1735689600,"model":"qwen3","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"6*7 is"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-7c1","object":"chat.completion.chunk","created":1735689600,"model":"qwen3","choices":[{"index":0,"delta":{"role":"assistant","content":"42","reasoning_content":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-7c1","object":"chat.completion.chunk","created":1735689600,"model":"qwen3","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":null},"logprobs":null,"finish_reason":"stop"}]}

data: {"id":"chatcmpl-7c1","object":"chat.completion.chunk","created":1735689600,"model":"qwen3","choices":[],"usage":{"prompt_tokens":14,"total_tokens":52,"completion_tokens":38}}

data: [DONE]

"""

OLLAMA_STREAM = """\
data: {"id":"chatcmpl-311","object":"chat.completion.chunk","created":1735689600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"We"},"finish_reason":null}]}

data: {"id":"chatcmpl-311","object":"chat.completion.chunk","created":1735689600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":" need 6*7."},"finish_reason":null}]}

data: {"id":"chatcmpl-311","object":"chat.completion.chunk","created":1735689600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"42"},"finish_reason":null}]}

data: {"id":"chatcmpl-311","object":"chat.completion.chunk","created":1735689600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}

data: [DONE]

"""

DEEPSEEK_STREAM = """\
: keep-alive

data: {"id":"930c","object":"chat.completion.chunk","created":1735689600,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"930c","object":"chat.completion.chunk","created":1735689600,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"6*7: six sevens"},"logprobs":null,"finish_reason":null}]}

data: {"id":"930c","object":"chat.completion.chunk","created":1735689600,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"content":"42","reasoning_content":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"930c","object":"chat.completion.chunk","created":1735689600,"model":"deepseek-reasoner","system_fingerprint":"fp_7e73fd9a08","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":120,"total_tokens":134,"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":14,"completion_tokens_details":{"reasoning_tokens":110}}}

data: [DONE]

"""

OPENROUTER_STREAM = """\
: OPENROUTER PROCESSING

data: {"id":"gen-1735689600-AbCdEf","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1735689600,"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"6*7:","reasoning_details":[{"type":"reasoning.text","text":"6*7:","format":"unknown","index":0}]},"finish_reason":null}]}

data: {"id":"gen-1735689600-AbCdEf","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1735689600,"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":" six sevens are 42.","reasoning_details":[{"type":"reasoning.text","text":" six sevens are 42.","format":"unknown","index":0}]},"finish_reason":null}]}

data: {"id":"gen-1735689600-AbCdEf","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1735689600,"choices":[{"index":0,"delta":{"role":"assistant","content":"42","reasoning":null},"finish_reason":null}]}

data: {"id":"gen-1735689600-AbCdEf","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1735689600,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":120,"total_tokens":134,"cost":0.000264,"completion_tokens_details":{"reasoning_tokens":110}}}

data: [DONE]

"""

MISTRAL_STREAM = """\
data: {"id":"c0ffee","object":"chat.completion.chunk","created":1735689600,"model":"magistral-small-2509","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"c0ffee","object":"chat.completion.chunk","created":1735689600,"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"The user wants"}]}]},"finish_reason":null}]}

data: {"id":"c0ffee","object":"chat.completion.chunk","created":1735689600,"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":" 6*7 = 42."}]}]},"finish_reason":null}]}

data: {"id":"c0ffee","object":"chat.completion.chunk","created":1735689600,"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[],"closed":true},{"type":"text","text":"6 × 7"}]},"finish_reason":null}]}

data: {"id":"c0ffee","object":"chat.completion.chunk","created":1735689600,"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":" = **42**."},"finish_reason":null}]}

data: {"id":"c0ffee","object":"chat.completion.chunk","created":1735689600,"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":412,"completion_tokens":38,"total_tokens":450}}

data: [DONE]

"""


def _ollama_empty_finish() -> str:
    """§3.3 old Ollama quirk: ``"finish_reason": ""`` instead of null on non-final chunks."""
    return OLLAMA_STREAM.replace('"finish_reason":null', '"finish_reason":""')


def _openrouter_comments_between() -> str:
    """§4.2: ": OPENROUTER PROCESSING" arrives "before and between events"."""
    return OPENROUTER_STREAM.replace("\n\ndata: ", "\n\n: OPENROUTER PROCESSING\n\ndata: ")


def _vllm_old_field_stream() -> str:
    """§2.4 "Older versions put reasoning_content in the deltas instead"."""
    return VLLM_STREAM.replace('"reasoning":', '"reasoning_content":')


def _crlf(text: str) -> str:
    """§7.6 SSE framing with CR LF line ends."""
    return text.replace("\n", "\r\n")


def _without_done(text: str) -> str:
    """§5.3: "whether a final data: [DONE] line is always sent (assume it may or may not be)"."""
    return text.replace("data: [DONE]\n\n", "")


STREAM_CASES = [
    pytest.param(OPENAI_STREAM,
                 Completion("42", None, "stop", Usage(14, 204, 192, None), False,
                            "o4-mini-2025-04-16"),
                 id="§1.3 OpenAI, usage chunk with choices []"),
    pytest.param(VLLM_STREAM,
                 Completion("42", "The user asks 6*7. 6*7 = 42.", "stop",
                            Usage(14, 38, None, None), False, "Qwen/Qwen3-8B"),
                 id="§2.4 vLLM reasoning deltas"),
    pytest.param(_vllm_old_field_stream(),
                 Completion("42", "The user asks 6*7. 6*7 = 42.", "stop",
                            Usage(14, 38, None, None), False, "Qwen/Qwen3-8B"),
                 id="§2.4 older vLLM reasoning_content deltas"),
    pytest.param(SGLANG_STREAM,
                 Completion("42", "6*7 is", "stop", Usage(14, 38, None, None), False, "qwen3"),
                 id="§3.1 SGLang repeated role and explicit nulls"),
    pytest.param(OLLAMA_STREAM,
                 Completion("42", "We need 6*7.", "stop", Usage(), False, "qwen3:8b"),
                 id="§3.3 Ollama reasoning deltas, no usage"),
    pytest.param(_ollama_empty_finish(),
                 Completion("42", "We need 6*7.", "stop", Usage(), False, "qwen3:8b"),
                 id="§3.3 Ollama finish_reason '' quirk"),
    pytest.param(DEEPSEEK_STREAM,
                 Completion("42", "6*7: six sevens", "stop", Usage(14, 120, 110, None), False,
                            "deepseek-reasoner"),
                 id="§4.1 DeepSeek keep-alive comment, usage on last content chunk"),
    pytest.param(OPENROUTER_STREAM,
                 Completion("42", "6*7: six sevens are 42.", "stop",
                            Usage(14, 120, 110, 0.000264), False, "deepseek/deepseek-r1"),
                 id="§4.2 OpenRouter ': OPENROUTER PROCESSING' comment"),
    pytest.param(_openrouter_comments_between(),
                 Completion("42", "6*7: six sevens are 42.", "stop",
                            Usage(14, 120, 110, 0.000264), False, "deepseek/deepseek-r1"),
                 id="§4.2 OpenRouter comments between every event"),
    pytest.param(MISTRAL_STREAM,
                 Completion("6 × 7 = **42**.", "The user wants 6*7 = 42.", "stop",
                            Usage(412, 38, None, None), False, "magistral-small-2509"),
                 id="§5.3 Mistral list deltas, mixed transition, string deltas"),
    pytest.param(_without_done(MISTRAL_STREAM),
                 Completion("6 × 7 = **42**.", "The user wants 6*7 = 42.", "stop",
                            Usage(412, 38, None, None), False, "magistral-small-2509"),
                 id="§5.3 Mistral without data: [DONE]"),
    pytest.param(_crlf(DEEPSEEK_STREAM),
                 Completion("42", "6*7: six sevens", "stop", Usage(14, 120, 110, None), False,
                            "deepseek-reasoner"),
                 id="§7.6 DeepSeek with CR LF line ends"),
]


def _feed(acc: StreamAccumulator, data: bytes, size: int) -> None:
    for at in range(0, len(data), size):
        acc.feed(data[at : at + size])


@pytest.mark.parametrize("size", [7, 1, 1 << 16], ids=["7-byte reads", "1-byte reads", "one read"])
@pytest.mark.parametrize(("transcript", "expected"), STREAM_CASES)
def test_stream_transcripts(transcript: str, expected: Completion, size: int) -> None:
    acc = StreamAccumulator()
    _feed(acc, transcript.encode(), size)
    assert acc.result() == expected
    assert acc.done is ("[DONE]" in transcript)
    assert acc.first_token is True


def test_stream_last_event_without_newline_is_read() -> None:
    # §7.6 "Some servers may close without [DONE]": the final event lacks its line end.
    data = _without_done(MISTRAL_STREAM).rstrip("\n").encode()
    acc = StreamAccumulator()
    _feed(acc, data, 7)
    assert acc.finish_reason is None  # the last line is still buffered
    completion = acc.result()
    assert (completion.text, completion.finish_reason, completion.usage) == (
        "6 × 7 = **42**.", "stop", Usage(412, 38, None, None))


@pytest.mark.parametrize(
    ("transcript", "first_token_after"),
    [
        pytest.param(OPENAI_STREAM, 2, id="§1.3 OpenAI: the role chunk with content '' is no token"),
        pytest.param(VLLM_STREAM, 2, id="§2.4 vLLM: the first reasoning delta is a token"),
        pytest.param(DEEPSEEK_STREAM, 3, id="§4.1 DeepSeek: reasoning_content '' is no token"),
        pytest.param(MISTRAL_STREAM, 2, id="§5.3 Mistral: the first thinking chunk is a token"),
    ],
)
def test_stream_first_token(transcript: str, first_token_after: int) -> None:
    """``first_token`` turns true at the first event that carries text or reasoning."""
    events = [e for e in transcript.split("\n\n") if e.strip()]
    acc = StreamAccumulator()
    seen = []
    for event in events:
        acc.feed(event.encode() + b"\n\n")
        seen.append(acc.first_token)
    assert seen.index(True) + 1 == first_token_after


def _sse(*deltas: str, finish: str = "stop", model: str = "qwen3:8b") -> str:
    """Minimal OpenAI-envelope stream with the given content deltas (§1.3 envelope)."""
    events = [
        {"id": "c", "object": "chat.completion.chunk", "model": model,
         "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]}
        for d in deltas
    ]
    events.append({"id": "c", "object": "chat.completion.chunk", "model": model,
                   "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": finish}]})
    lines = [f"data: {orjson.dumps(e).decode()}\n\n" for e in events]
    return "".join(lines) + "data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("transcript", "expected"),
    [
        pytest.param(_sse("<thi", "nk>\n6*7", " = 42\n</th", "ink>\n\n", "42"),
                     Completion("42", "6*7 = 42", "stop", Usage(), False, "qwen3:8b"),
                     id="§3.3 older Ollama inline <think>, tags split across deltas"),
        pytest.param(_sse("[TH", "INK]The user wants 6*7.", "[/TH", "INK]6 × 7 = **42**."),
                     Completion("6 × 7 = **42**.", "The user wants 6*7.", "stop", Usage(), False,
                                "qwen3:8b"),
                     id="§5.5 raw [THINK] split as '[TH' + 'INK]'"),
        pytest.param(_sse("6*7 = 42", "\n</", "think>", "\n\n42"),
                     Completion("42", "6*7 = 42", "stop", Usage(), False, "qwen3:8b"),
                     id="§2.5 R1 stream with only a closing </think>"),
        pytest.param(_sse("<think>", "\n6*7 is", " about", finish="length"),
                     Completion("", "6*7 is about", "length", Usage(), True, "qwen3:8b"),
                     id="§2.5 stream truncated inside an unclosed <think>"),
    ],
)
def test_stream_inline_tags(transcript: str, expected: Completion) -> None:
    acc = StreamAccumulator()
    _feed(acc, transcript.encode(), 7)
    assert acc.result() == expected


def _cut_before_finish(transcript: str) -> str:
    events = transcript.split("\n\n")
    index = next(i for i, e in enumerate(events) if '"finish_reason":"stop"' in e)
    return "\n\n".join(events[:index]) + "\n\n"


@pytest.mark.parametrize(
    ("transcript", "message"),
    [
        pytest.param(_cut_before_finish(OPENAI_STREAM), "stream ended without a finish_reason",
                     id="§1.3 OpenAI cut before the finish chunk"),
        pytest.param(_cut_before_finish(MISTRAL_STREAM), "stream ended without a finish_reason",
                     id="§5.3 Mistral cut before the finish chunk"),
        pytest.param(_cut_before_finish(_ollama_empty_finish()),
                     "stream ended without a finish_reason",
                     id="§3.3 Ollama only finish_reason '' seen"),
        pytest.param(VLLM_STREAM[:400], "bad JSON in stream event",
                     id="§7.4 vLLM cut in the middle of an event"),
        pytest.param("", "stream ended without a finish_reason", id="empty body"),
    ],
)
def test_stream_without_finish_reason_is_malformed(transcript: str, message: str) -> None:
    acc = StreamAccumulator()
    _feed(acc, transcript.encode(), 7)
    with pytest.raises(MalformedBody, match=message):
        acc.result()


def _openrouter_error_midstream() -> str:
    """§4.2 reasoning chunks, then the §7.5 mid-stream error event, then the end."""
    events = OPENROUTER_STREAM.split("\n\n")
    return "\n\n".join([*events[:3], "data: " + OPENROUTER_ERROR_EVENT]) + "\n\n"


@pytest.mark.parametrize(
    ("transcript", "message"),
    [
        pytest.param(_openrouter_error_midstream(),
                     "error event in stream: Provider disconnected unexpectedly",
                     id="§7.5 OpenRouter mid-stream error, finish_reason error"),
        pytest.param(
            _openrouter_error_midstream().replace('"code":"server_error"', '"code":502'),
            "error event in stream: Provider disconnected unexpectedly",
            id="§7.5 OpenRouter mid-stream error with int code 502"),
        pytest.param(
            'data: {"error": {"message": "CUDA out of memory", "type": "InternalServerError", '
            '"param": null, "code": 500}}\n\n',
            "error event in stream: CUDA out of memory",
            id="§7.5 vLLM >=0.10.1 nested error event"),
        pytest.param(
            'data: {"object": "error", "message": "CUDA out of memory", '
            '"type": "InternalServerError", "param": null, "code": 500}\n\n',
            "error event in stream: CUDA out of memory",
            id="§7.5 vLLM older flat error event"),
        pytest.param(
            VLLM_STREAM.split("\n\n")[0] + "\n\n"
            'data: {"id":"c","choices":[{"index":0,"delta":{"content":"4"},'
            '"finish_reason":"error"}]}\n\n',
            "finish_reason is 'error' in stream",
            id="§7.5 finish_reason error without an error object"),
    ],
)
def test_stream_error_events_are_malformed(transcript: str, message: str) -> None:
    acc = StreamAccumulator()
    with pytest.raises(MalformedBody, match=message):
        _feed(acc, transcript.encode(), 7)
        acc.result()


def test_stream_ignores_choices_other_than_index_0() -> None:
    # §9 "Streaming accumulation (per choice index)": only choice 0 is read.
    other = (
        'data: {"id":"c","choices":[{"index":1,"delta":{"content":"99"},'
        '"finish_reason":"length"}]}\n\n'
    )
    acc = StreamAccumulator()
    _feed(acc, (other + VLLM_STREAM).encode(), 7)
    completion = acc.result()
    assert (completion.text, completion.finish_reason) == ("42", "stop")
