"""The published-scores registry (evals/reference_data) and the verdict logic.

Numbers in the shipped-file tests come from /work/shared/reference/benchmarks-and-cards.md
Part B (B1: Magistral Small 1.2 card; B2: Artificial Analysis; B3: DeepSeek-R1 README).
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
from pathlib import Path
from typing import Any

import pytest

from evals.errors import ConfigError, DataError
from evals.published import (
    COLUMNS,
    Comparison,
    PublishedScore,
    RunSettings,
    best_match,
    canonical_model,
    compare,
    load_published,
    verdict,
)

HEADER = ",".join(COLUMNS)
GOOD = "magistral-small-2509,aime2025,77.34,pass@1,,0.7,0.95,131072,,,,https://x.org/card,2025-09,card: x"
LCB_WINDOW = RunSettings(n=8, temperature=0.7, top_p=0.95, max_tokens=131072, prompt=None,
                         since="2024-08-01", until="2025-01-31")


BASE = PublishedScore(
    model="magistral-small-2509", benchmark="aime2025", score=77.34, metric="pass@1", n=None,
    temperature=0.7, top_p=0.95, max_tokens=131072, since=None, until=None, prompt=None,
    source="https://x.org/card", source_date="2025-09", notes="card: x", origin="t.csv:2")
RUN = RunSettings(n=64, temperature=0.7, top_p=0.95, max_tokens=131072, prompt=None,
                  since=None, until=None)


def _score(**overrides: Any) -> PublishedScore:
    return dataclasses.replace(BASE, **overrides)


def _run(**overrides: Any) -> RunSettings:
    return dataclasses.replace(RUN, **overrides)


# --- the shipped file ---------------------------------------------------------------------


def test_shipped_file_loads_and_every_row_cites_a_source():
    table = load_published()
    assert len(table.rows) > 50
    for row in table.rows:
        assert row.source, row.origin
        assert row.source_date, row.origin
        assert row.notes.split(":")[0] in {"card", "leaderboard", "secondary"}, row.origin
        assert row.model == canonical_model(row.model), row.origin
        assert row.origin.startswith("evals/reference_data/published.csv:")


def test_shipped_header_is_exactly_the_documented_columns():
    text = importlib.resources.files("evals").joinpath("reference_data/published.csv")
    assert text.read_text(encoding="utf-8").splitlines()[0] == HEADER


def test_every_alias_targets_a_model_with_published_rows():
    models = {row.model for row in load_published().rows}
    text = importlib.resources.files("evals").joinpath("reference_data/aliases.csv")
    rows = list(csv.DictReader(text.read_text(encoding="utf-8").splitlines()))
    assert rows
    for row in rows:
        assert row["model"] in models, row


def test_magistral_small_12_aime2025_has_the_card_and_the_aa_rows():
    table = load_published()
    rows = table.lookup("mistralai/Magistral-Small-2509", "aime2025")
    card = [r for r in rows if r.notes.startswith("card:")]
    assert [r.score for r in card] == [77.34]  # B1, Magistral-Small-2509 card
    assert card[0].temperature == 0.7 and card[0].top_p == 0.95 and card[0].max_tokens == 131072
    aa = [r for r in rows if "Artificial Analysis" in r.notes]
    assert [r.score for r in aa] == [80.3]  # B2, marked unconfirmed
    assert "unconfirmed" in aa[0].notes
    assert table.lookup("magistral-small-2509", "aime2025") == rows
    assert table.lookup("mistralai/magistral-small-2509", "aime2025") == rows


def test_deepseek_r1_rows_carry_the_readme_settings():
    (row,) = [r for r in load_published().lookup("deepseek-ai/DeepSeek-R1", "livecodebench")
              if r.notes.startswith("card:")]
    assert (row.score, row.n, row.temperature, row.top_p, row.max_tokens) == (
        65.9, 64, 0.6, 0.95, 32768)
    assert (row.since, row.until) == ("2024-08-01", "2025-01-31")
    (cons,) = [r for r in load_published().lookup("deepseek-r1-distill-qwen-7b", "aime2024")
               if r.metric == "maj@64"]
    assert cons.score == 83.3


@pytest.mark.parametrize(("name", "canonical"), [
    ("magistral-small-2509", "magistral-small-2509"),
    ("mistralai/Magistral-Small-2509", "magistral-small-2509"),
    ("unsloth/Magistral-Small-2509-GGUF", "magistral-small-2509"),
    ("magistral-small-latest", "magistral-small-2509"),
    ("mistral/magistral-small-latest", "magistral-small-2509"),
    ("mistralai/magistral-medium-2506:thinking", "magistral-medium-2506"),
    ("deepseek-reasoner", "deepseek-r1"),
    ("Qwen/QwQ-32B", "qwq-32b"),
    ("openai/gpt-oss-120b", "gpt-oss-120b"),
    ("some-org/Unknown-7B:free", "unknown-7b"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_canonical_model(name, canonical):
    assert canonical_model(name) == canonical


# --- user files ---------------------------------------------------------------------------


def test_user_rows_follow_the_shipped_ones_and_may_omit_optional_columns(tmp_path: Path):
    path = tmp_path / "mine.csv"
    path.write_text("model,benchmark,score,metric,source\n"
                    "Org/My-Model:free,aime2025,50,pass@1,\"internal, run 3\"\n", encoding="utf-8")
    table = load_published([path])
    (row,) = table.lookup("my-model", "aime2025")
    assert row.source == "internal, run 3" and row.n is None and row.origin == f"{path}:2"
    assert table.rows[-1] == row


def test_a_missing_user_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"--published .*nope\.csv: no such file"):
        load_published([tmp_path / "nope.csv"])


def _bad(field: str, value: str) -> str:
    fields = next(csv.reader([GOOD]))
    fields[COLUMNS.index(field)] = value
    return ",".join(fields)


@pytest.mark.parametrize(("line3", "message"), [
    pytest.param(_bad("score", "abc"), "score 'abc' is not a number", id="score-not-a-number"),
    pytest.param(_bad("score", "0.7734%"), "score '0.7734%'", id="score-with-percent"),
    pytest.param(_bad("score", "101"), "score '101' is not a number in", id="score-above-100"),
    pytest.param(_bad("score", ""), "score 'empty'", id="score-empty"),
    pytest.param(_bad("metric", "cons@64"), "write cons@64 as maj@64", id="cons-metric"),
    pytest.param(_bad("metric", "acc"), "metric 'acc' is not pass@K", id="unknown-metric"),
    pytest.param(_bad("n", "0"), "n '0' is not a positive integer", id="n-zero"),
    pytest.param(_bad("n", "6.5"), "n '6.5' is not a positive integer", id="n-fraction"),
    pytest.param(_bad("metric", "maj@64").replace(",,0.7", ",8,0.7"), "n 8 is smaller",
                 id="n-below-k"),
    pytest.param(_bad("temperature", "hot"), "temperature 'hot'", id="temperature-word"),
    pytest.param(_bad("top_p", "1.5"), "top_p '1.5'", id="top-p-above-1"),
    pytest.param(_bad("since", "2024-8-1"), "since '2024-8-1' is not a date", id="unpadded"),
    pytest.param(_bad("until", "2025-02-30"), "until '2025-02-30' is not a date", id="no-such-day"),
    pytest.param(_bad("since", "2025-03-01").replace(",,,https", ",2025-01-01,,https"),
                 "since 2025-03-01 is after until 2025-01-01", id="window-reversed"),
    pytest.param(_bad("source_date", "Sept 2025"), "source_date 'Sept 2025'", id="bad-month"),
    pytest.param(_bad("source", ""), "source empty", id="missing-source"),
    pytest.param(_bad("benchmark", ""), "benchmark empty", id="missing-benchmark"),
    pytest.param(GOOD + ",extra", "15 fields but the header has 14", id="unquoted-comma"),
])
def test_a_malformed_row_names_the_file_and_line(tmp_path: Path, line3: str, message: str):
    path = tmp_path / "user.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{line3}\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_published([path])
    text = str(info.value)
    assert text.startswith(f"{path}:3: "), text
    assert message in text


@pytest.mark.parametrize("header", [
    pytest.param("model,benchmark,score,source", id="missing-metric"),
    pytest.param(HEADER + ",temprature", id="typo-column"),
    pytest.param("model,model,benchmark,score,metric,source", id="duplicate-column"),
])
def test_a_bad_header_is_rejected_on_line_1(tmp_path: Path, header: str):
    path = tmp_path / "user.csv"
    path.write_text(header + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:1: bad header"):
        load_published([path])


# --- verdict ------------------------------------------------------------------------------


@pytest.mark.parametrize(("ci_low", "ci_high", "published", "expected"), [
    pytest.param(0.7734, 0.80, 77.34, "consistent", id="published-at-the-low-edge"),
    pytest.param(0.70, 0.7734, 77.34, "consistent", id="published-at-the-high-edge"),
    pytest.param(0.7735, 0.80, 77.34, "above", id="low-edge-just-over-published"),
    pytest.param(0.70, 0.7733, 77.34, "below", id="high-edge-just-under-published"),
    pytest.param(0.72, 0.83, 77.34, "consistent", id="published-inside"),
    pytest.param(0.8614, 0.8614, 86.14, "consistent", id="zero-width-interval-at-the-number"),
    pytest.param(0.0, 0.0, 0.0, "consistent", id="all-zero"),
    pytest.param(1.0, 1.0, 100.0, "consistent", id="all-perfect"),
])
def test_verdict_at_the_interval_edges(ci_low, ci_high, published, expected):
    assert verdict(ci_low, ci_high, published) == expected


# --- compare and best_match ---------------------------------------------------------------


def test_compare_lists_the_settings_the_source_states_and_the_run_differs_on():
    published = _score(n=64, temperature=0.7, max_tokens=131072, prompt="r1")
    run = _run(n=8, temperature=0.6, max_tokens=32768, prompt="matharena")
    comp = compare(published, {"pass@1": (0.75, 0.70, 0.80)}, run)
    assert comp.verdict == "consistent"
    assert comp.delta == pytest.approx(75 - 77.34)
    assert comp.settings_differ == ("n 8 (published 64)", "temperature 0.6 (published 0.7)",
                                    "max_tokens 32768 (published 131072)",
                                    "prompt matharena (published r1)")


def test_compare_ignores_settings_the_source_does_not_state_and_a_larger_run_n():
    published = _score(n=10, temperature=None, top_p=None, max_tokens=None)
    comp = compare(published, {"pass@1": (0.9, 0.85, 0.95)}, _run(n=64, temperature=1.0))
    assert comp.settings_differ == ()
    assert comp.verdict == "above"


def test_compare_without_run_settings_lists_nothing():
    comp = compare(_score(n=64), {"pass@1": (0.5, 0.4, 0.6)}, None)
    assert (comp.verdict, comp.settings_differ) == ("below", ())


def test_missing_maj64_is_not_comparable_and_says_why():
    published = _score(benchmark="aime2024", metric="maj@64", n=64, score=83.3)
    comp = compare(published, {"pass@1": (0.7, 0.6, 0.8)}, _run(n=8))
    assert comp.verdict == "not comparable"
    assert (comp.measured, comp.ci_low, comp.ci_high, comp.delta) == (None, None, None, None)
    assert comp.settings_differ == ("maj@64 needs n >= 64 (run n 8)", "n 8 (published 64)")


@pytest.mark.parametrize(("since", "until", "expected"), [
    pytest.param(None, None, ("window not stated by the source (run: 2024-08-01..2025-01-31)",),
                 id="card-without-window"),
    pytest.param("2024-08-01", "2025-01-31", (), id="same-window"),
    pytest.param("2024-07-01", "2025-01-01",
                 ("window 2024-08-01..2025-01-31 (published 2024-07-01..2025-01-01)",),
                 id="artificial-analysis-window"),
])
def test_livecodebench_window(since, until, expected):
    published = _score(benchmark="livecodebench", score=70.88, since=since, until=until)
    comp = compare(published, {"pass@1": (0.7, 0.65, 0.75)}, LCB_WINDOW)
    assert comp.settings_differ == expected


def _comp(verdict_: str, differ: int, notes: str) -> Comparison:
    return Comparison(_score(notes=notes), None, None, None, None, verdict_,
                      tuple(f"d{i}" for i in range(differ)))


def test_best_match_prefers_comparable_then_fewest_differences_then_cards_then_file_order():
    nc = _comp("not comparable", 0, "card: a")
    many = _comp("consistent", 2, "card: b")
    leaderboard = _comp("below", 1, "leaderboard: c")
    card = _comp("above", 1, "card: d")
    card_later = _comp("consistent", 1, "card: e")
    assert best_match([nc, many, leaderboard, card, card_later]) is card
    assert best_match([nc, many, leaderboard]) is leaderboard
    assert best_match([nc]) is nc
    assert best_match([]) is None
