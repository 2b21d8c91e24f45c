"""Model profiles: matching, settings resolution, system messages, and grading of the
unboxed answers Magistral 1.0's system prompt asks for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evals.errors import ConfigError
from evals.grading.aime import grade_aime
from evals.grading.math_compare import grade_math_answer
from evals.profiles import (
    SETTING_KEYS,
    Profile,
    Setting,
    get_profile,
    load_profiles,
    profile_for_model,
    resolve_settings,
    system_message,
)
from evals.records import Sample

# -- matching -------------------------------------------------------------------------------------

MATCHES = [
    pytest.param("mistralai/Magistral-Small-2509", "magistral-1.2", id="hf-name"),
    pytest.param("magistral-small-2509", "magistral-1.2", id="mistral-api-name"),
    pytest.param("mistralai/magistral-small-2509", "magistral-1.2", id="lm-studio-name"),
    pytest.param("mistralai/Magistral-Small-2509-GGUF", "magistral-1.2", id="gguf-repo"),
    pytest.param("magistral-medium-2507", "magistral-1.2", id="medium-1.1"),
    pytest.param("magistral-medium-latest", "magistral-1.2", id="latest-alias"),
    pytest.param("magistral-small-2506", "magistral-1.0", id="small-1.0"),
    pytest.param("mistralai/magistral-medium-2506:thinking", "magistral-1.0",
                 id="openrouter-medium-1.0"),
    pytest.param("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "deepseek-r1", id="r1-distill"),
    pytest.param("deepseek-ai/DeepSeek-R1", "deepseek-r1", id="r1"),
    pytest.param("deepseek-ai/DeepSeek-R1-0528", "deepseek-r1", id="r1-0528"),
    pytest.param("deepseek-reasoner", "deepseek-r1", id="deepseek-api"),
    pytest.param("Qwen/QwQ-32B", "qwq", id="qwq"),
    pytest.param("Qwen/Qwen3-8B", "qwen3-thinking", id="qwen3-dense"),
    pytest.param("Qwen/Qwen3-30B-A3B", "qwen3-thinking", id="qwen3-moe"),
    pytest.param("gpt-oss-20b", "gpt-oss", id="gpt-oss-20b"),
    pytest.param("openai/gpt-oss-120b", "gpt-oss", id="gpt-oss-120b"),
]


@pytest.mark.parametrize(("model", "expected"), MATCHES)
def test_model_names_in_every_spelling_find_their_profile(model: str, expected: str) -> None:
    profile = profile_for_model(model)
    assert profile is not None
    assert profile.name == expected


@pytest.mark.parametrize("model", ["llama-3.1-8b-instruct", "gpt-4o", "mistral-large-latest",
                                   "Qwen/Qwen3-235B-A22B-Instruct-2507"])
def test_a_model_without_a_profile_gets_none(model: str) -> None:
    assert profile_for_model(model) is None


# -- the shipped file -----------------------------------------------------------------------------


def test_every_set_value_has_a_source() -> None:
    for profile in load_profiles().values():
        for field in (*SETTING_KEYS, "expected_completion_tokens"):
            if getattr(profile, field) is not None:
                assert profile.source_of(field), (profile.name, field)
        if profile.extra_body:
            assert profile.source_of("extra_body"), profile.name
        assert "estimate" in (profile.source_of("expected_completion_tokens") or "")


def test_card_values() -> None:
    small_12 = get_profile("magistral-1.2")
    assert (small_12.temperature, small_12.top_p, small_12.max_tokens) == (0.7, 0.95, 131072)
    assert small_12.system_prompt is not None
    assert small_12.system_prompt.startswith("First draft your thinking process")
    assert "unconfirmed" in (small_12.source_of("system_prompt") or "")  # 1.1 = 1.2 text
    small_10 = get_profile("magistral-1.0")
    assert small_10.max_tokens == 40960
    assert small_10.system_prompt is not None
    assert "NEVER use \\boxed{} in your response." in small_10.system_prompt
    r1 = get_profile("deepseek-r1")
    assert (r1.temperature, r1.top_p, r1.max_tokens, r1.system_prompt) == (0.6, 0.95, 32768, None)
    assert get_profile("qwen3-thinking").top_k == 20
    assert dict(get_profile("gpt-oss").extra_body) == {"reasoning_effort": "high"}


def test_unknown_profile_suggests_the_closest() -> None:
    with pytest.raises(ConfigError) as info:
        get_profile("magistral-12")
    message = str(info.value)
    assert "Unknown profile 'magistral-12'" in message
    assert "Did you mean: magistral-1.2" in message
    assert "Known profiles:" in message and "deepseek-r1" in message


BAD_FILES = [
    pytest.param('[[profile]]\nname = "x"\ndescription = ""\nmodels = ["x"]\n'
                 "expected_completion_tokens = 1\ntemprature = 0.6\n",
                 ["profile 'x'", "'temprature'", "temperature"], id="unknown-key"),
    pytest.param('[[profile]]\nname = "x"\ndescription = ""\nmodels = ["x"]\n'
                 'expected_completion_tokens = 1\ntemperature = "hot"\n',
                 ["profile 'x'", "'temperature' must be a number"], id="wrong-type"),
    pytest.param('[[profile]]\nname = "x"\ndescription = ""\nmodels = ["x"]\n'
                 "expected_completion_tokens = 1\nmax_tokens = true\n",
                 ["'max_tokens' must be a positive integer"], id="bool-is-not-int"),
    pytest.param('[[profile]]\nname = "x"\ndescription = ""\nmodels = ["X-*"]\n'
                 "expected_completion_tokens = 1\n",
                 ["must be lowercase"], id="uppercase-pattern"),
    pytest.param('[[profile]]\nname = "x"\ndescription = ""\nmodels = ["x"]\n'
                 'expected_completion_tokens = 1\nsystem_prompt = "hi"\n'
                 'system_prompt_format = "thinking_chunks"\n',
                 ["[THINK]...[/THINK]"], id="chunks-without-think"),
    pytest.param('[[profile]]\nname = "x"\ndescription = ""\nmodels = ["x"]\n',
                 ["missing 'expected_completion_tokens'"], id="missing-required"),
    pytest.param('[[profile]]\nname = "x"\ndescription = ""\nmodels = ["x"]\n'
                 "expected_completion_tokens = 1\n[profile.sources]\ntop_q = \"a\"\n",
                 ["unknown field 'top_q'", "top_p"], id="source-for-unknown-field"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_malformed_profiles_name_the_profile_and_key(tmp_path: Path, text: str,
                                                     expected: list[str]) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profiles(path)
    for fragment in expected:
        assert fragment in str(info.value)


# -- settings -------------------------------------------------------------------------------------


def test_flags_override_the_profile_and_origins_are_recorded() -> None:
    profile = get_profile("qwen3-thinking")
    settings = resolve_settings(profile, {"temperature": 0.0, "top_p": None},
                                {"max_tokens": 2048, "system_prompt": "task"})
    assert settings["temperature"] == Setting(0.0, "flag", None)
    assert settings["top_p"].value == 0.95  # a None flag is "not given"
    assert settings["top_p"].origin == "profile qwen3-thinking"
    assert settings["top_p"].source == profile.source_of("top_p")
    assert settings["max_tokens"].origin == "profile qwen3-thinking"  # profile beats task
    assert settings["system_prompt"] == Setting("task", "task default", None)
    assert set(settings) == set(SETTING_KEYS)


def test_without_profile_or_default_the_server_decides() -> None:
    settings = resolve_settings(None, {})
    assert all(s == Setting(None, "server default", None) for s in settings.values())


def test_profile_without_a_value_falls_back_to_the_task_default() -> None:
    settings = resolve_settings(get_profile("gpt-oss"), {}, {"max_tokens": 4096})
    assert settings["max_tokens"] == Setting(4096, "task default", None)


# -- system messages ------------------------------------------------------------------------------


def test_magistral_12_prompt_goes_to_mistral_as_thinking_chunks() -> None:
    profile = get_profile("magistral-1.2")
    message = system_message(profile, "mistral")
    assert message is not None
    assert message["role"] == "system"
    before, thinking, after = message["content"]
    assert before["type"] == "text"
    assert before["text"].endswith("must follow the template below:")
    assert thinking["type"] == "thinking" and thinking["closed"] is True
    assert thinking["thinking"] == [{"type": "text", "text": (
        "Your thoughts or/and draft, like working through an exercise on scratch paper. Be as "
        "casual and as long as you want until you are confident to generate the response. "
        "Use the same language as the input.")}]
    assert after == {"type": "text", "text": "Here, provide a self-contained response."}
    assert "[THINK]" not in str(message)


@pytest.mark.parametrize("provider", ["vllm", "openai", None])
def test_other_providers_get_the_plain_string(provider: str | None) -> None:
    profile = get_profile("magistral-1.2")
    assert system_message(profile, provider) == {"role": "system",
                                                 "content": profile.system_prompt}


def test_no_system_prompt_no_message() -> None:
    assert system_message(get_profile("deepseek-r1"), "vllm") is None
    plain = get_profile("magistral-1.0")
    assert system_message(plain, "mistral") == {"role": "system", "content": plain.system_prompt}


def test_profile_is_frozen_and_hashable() -> None:
    profile = get_profile("gpt-oss")
    assert isinstance(profile, Profile)
    assert hash(profile) == hash(get_profile("gpt-oss"))
    with pytest.raises(AttributeError):
        profile.temperature = 0.0  # type: ignore[misc]


# -- Magistral 1.0 answers without \boxed{} are graded right ---------------------------------------
#
# Magistral 1.0's system prompt (magistral-1.0 profile; reference B1) says "NEVER use \boxed{}
# in your response" and asks for a Markdown summary "that ... presents a clear final answer".
# Provenance: each row is CONSTRUCTED in the style that prompt asks for (a Markdown summary
# after </think>, answer stated in prose, bold or display math); none is a recorded model
# output. The "style" column says which form of that summary the row stands for.

MAGISTRAL_10 = [
    pytest.param("Summing over the three cases gives the total count.\n\n**Final answer:** 204",
                 "204", id="bold-final-answer-label"),
    pytest.param("We count the valid pairs for each residue class and add them up.\n\n"
                 "Thus, the number of ordered pairs is **73**.", "73", id="bold-number-in-sentence"),
    pytest.param("Summing the three cases gives 36 + 48 + 20 = 104.\n\nThe answer is 104.",
                 "104", id="the-answer-is"),
    pytest.param("The probability simplifies to $\\frac{8}{25}$ with $m$ and $n$ coprime.\n\n"
                 "Therefore m + n = 33.", "33", id="therefore-m-plus-n"),
    pytest.param("<think>\nTry n = 5 first... maybe 12? No, recount.\n</think>\n\n"
                 "**Final Answer**\n\nThe number of such integers $n$ is $540$.", "540",
                 id="final-answer-heading-then-sentence"),
    pytest.param("### Summary\nWe set up the recurrence and compute $a_{10}$ modulo 1000.\n\n"
                 "Thus, the final answer is:\n\n\\[ 25 \\]", "25", id="display-math-after-colon"),
    pytest.param("After reducing modulo 1000 we obtain 2023 ≡ 23.\n\nHence, the remainder when "
                 "$N$ is divided by $1000$ is $\\mathbf{23}$.", "23", id="latex-bold-number"),
]


@pytest.mark.parametrize(("response", "gold"), MAGISTRAL_10)
def test_magistral_10_unboxed_answers_grade_right_for_aime(response: str, gold: str) -> None:
    sample = Sample(id="1", messages=(("user", "q"),), target=gold)
    grade = asyncio.run(grade_aime(response, sample))
    assert grade.correct, grade


@pytest.mark.parametrize(("response", "gold"), [
    pytest.param("**Final Answer**\n\nThe probability that the two chords intersect is "
                 "$\\frac{1}{3}$.", "\\frac{1}{3}", id="heading-then-fraction-sentence"),
    pytest.param("After reducing modulo 1000 we obtain 2023 ≡ 23.\n\nHence, the remainder when "
                 "$N$ is divided by $1000$ is $\\mathbf{23}$.", "23", id="latex-bold-number"),
    pytest.param("Summing over the three cases gives the total count.\n\n**Final answer:** 204",
                 "204", id="bold-final-answer-label"),
])
def test_magistral_10_unboxed_answers_grade_right_for_math500(response: str, gold: str) -> None:
    verdict = grade_math_answer(gold, response)
    assert verdict["correct"], verdict
