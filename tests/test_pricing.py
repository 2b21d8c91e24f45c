"""Price table: the shipped rows, user overrides, lookup order, cost and bad files."""

from __future__ import annotations

import csv
import dataclasses
import re
from importlib import resources
from pathlib import Path

import pytest

from evals.errors import ConfigError, DataError
from evals.pricing import HEADER, Price, PriceTable, load_prices

HEADER_LINE = ",".join(HEADER) + "\n"


def write(tmp_path: Path, body: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER_LINE + body, encoding="utf-8")
    return path


def price(
    provider: str,
    model: str,
    inp: float = 1.0,
    out: float = 2.0,
    reasoning: float | None = None,
    origin: str = "t:2",
) -> Price:
    return Price(provider, model, inp, out, reasoning, "test", "2025-01-01", origin)


# --- the shipped file ------------------------------------------------------------------


def test_shipped_header_is_exact():
    text = resources.files("evals").joinpath("reference_data", "prices.csv").read_text("utf-8")
    assert (
        text.splitlines()[0]
        == "provider,model,input_per_m,output_per_m,reasoning_per_m,source,date"
    )


@pytest.mark.parametrize(
    ("model", "inp", "out"),
    [
        # benchmarks-and-cards.md B2 (Artificial Analysis) and B5 (Mistral docs model data)
        ("magistral-small-2509", 0.5, 1.5),
        ("magistral-small-latest", 0.5, 1.5),
        # benchmarks-and-cards.md B5 (Mistral docs model data)
        ("magistral-medium-2509", 2.0, 5.0),
        ("magistral-medium-latest", 2.0, 5.0),
    ],
)
def test_shipped_magistral_prices(model, inp, out):
    found = load_prices().lookup("mistral", model)
    assert found is not None
    assert (found.input_per_m, found.output_per_m, found.reasoning_per_m) == (inp, out, None)
    assert found.source and found.date
    assert found.origin.startswith("evals/reference_data/prices.csv:")


def test_every_shipped_row_cites_a_source():
    for row in load_prices().rows:
        assert row.source, row.origin
        assert row.date, row.origin


# --- cost --------------------------------------------------------------------------------


def test_cost_counts_reasoning_inside_completion():
    p = price("x", "m", inp=0.5, out=1.5, reasoning=3.0)
    # 1M prompt * 0.5 + (3M - 1M) answer * 1.5 + 1M reasoning * 3.0 = 0.5 + 3.0 + 3.0
    assert p.cost(1_000_000, 3_000_000, 1_000_000) == pytest.approx(6.5)


def test_cost_bills_reasoning_as_output_when_no_reasoning_price():
    p = price("x", "m", inp=0.5, out=1.5)
    assert p.cost(1_000_000, 3_000_000, 1_000_000) == pytest.approx(0.5 + 4.5)
    assert p.cost(1_000_000, 3_000_000) == pytest.approx(0.5 + 4.5)


def test_cost_treats_none_as_zero():
    p = price("x", "m", inp=2.0, out=5.0)
    assert p.cost(None, None) == 0.0
    assert p.cost(1000, None) == pytest.approx(0.002)
    assert p.cost(None, 1000, None) == pytest.approx(0.005)


def test_cost_rejects_reasoning_above_completion():
    with pytest.raises(ValueError, match="reasoning_tokens=10 exceeds completion_tokens=5"):
        price("x", "m").cost(0, 5, 10)


def test_cost_rejects_negative_counts():
    with pytest.raises(ValueError, match="prompt_tokens=-1"):
        price("x", "m").cost(-1, 0)


def test_price_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        price("x", "m").input_per_m = 3.0  # type: ignore[misc]


# --- lookup ------------------------------------------------------------------------------


def test_lookup_is_case_insensitive():
    table = PriceTable(rows=(price("Mistral", "Magistral-Small-2509"),))
    assert table.lookup("mistral", "magistral-small-2509") is table.rows[0]


def test_lookup_prefers_exact_provider_over_star():
    star = price("*", "m", inp=9.0)
    exact = price("acme", "m", inp=1.0)
    table = PriceTable(rows=(exact, star))
    assert table.lookup("acme", "m") is exact
    assert table.lookup("other", "m") is star


def test_lookup_without_star_row_misses_other_providers():
    table = PriceTable(rows=(price("acme", "m"),))
    assert table.lookup("other", "m") is None
    assert table.lookup("acme", "unknown") is None


def test_lookup_with_unknown_provider_accepts_any_row():
    row = price("acme", "m")
    assert PriceTable(rows=(row,)).lookup(None, "m") is row


def test_lookup_uses_canonical_only_after_exact_names():
    def strip(name: str) -> str:
        return name.split("/")[-1]

    plain = price("acme", "m", inp=1.0)
    prefixed = price("acme", "vendor/m", inp=2.0)
    table = PriceTable(rows=(prefixed, plain))
    # the exact name wins even though ``plain`` was loaded later and matches canonically
    assert table.lookup("acme", "vendor/m", strip) is prefixed
    assert table.lookup("acme", "other/m", strip) is plain
    assert table.lookup("acme", "other/m") is None
    star = PriceTable(rows=(price("*", "m"),))
    assert star.lookup("acme", "Vendor/M", strip) is star.rows[0]


def test_later_rows_win_for_the_same_key():
    first = price("acme", "m", inp=1.0, origin="a:2")
    second = price("ACME", "M", inp=2.0, origin="b:2")
    assert PriceTable(rows=(first, second)).lookup("acme", "m") is second


# --- loading user files -------------------------------------------------------------------


def test_user_file_overrides_shipped_row(tmp_path):
    path = write(tmp_path, "mistral,magistral-small-2509,0.1,0.2,0.3,my contract,2025-10\n")
    table = load_prices([path])
    found = table.lookup("mistral", "magistral-small-2509")
    assert found is not None
    assert (found.input_per_m, found.output_per_m, found.reasoning_per_m) == (0.1, 0.2, 0.3)
    assert found.origin == f"{path}:2"
    assert len(table.rows) == len(load_prices().rows) + 1


def test_user_file_star_row_and_quoted_source(tmp_path):
    path = write(tmp_path, '*,my-model,1,2,,"a, b",\n\n')
    found = load_prices([path]).lookup("anyone", "my-model")
    assert found is not None
    assert (found.source, found.date, found.reasoning_per_m) == ("a, b", "", None)


def test_user_file_with_bom_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("\ufeff" + HEADER_LINE + "acme,m,1,2,,,\n", encoding="utf-8")
    assert load_prices([path]).lookup("acme", "m") is not None


def test_missing_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(ConfigError, match=rf"--prices {re.escape(str(missing))}: no such file"):
        load_prices([missing])


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        pytest.param(
            "acme,m,1,2,,s,2025-01-01\nacme,n,abc,2,,s,\n",
            3,
            "input_per_m 'abc' is not a number",
            id="price-not-a-number",
        ),
        pytest.param("acme,m,$1,2,,s,\n", 2, r"no '\$'", id="dollar-sign"),
        pytest.param(
            "acme,m,1,-2,,s,\n",
            2,
            "output_per_m '-2' must be a finite number >= 0",
            id="negative-price",
        ),
        pytest.param("acme,m,1,2,nan,s,\n", 2, "reasoning_per_m 'nan'", id="nan-price"),
        pytest.param("acme,m,1,2,,s\n", 2, "6 fields, expected 7", id="missing-field"),
        pytest.param(
            "acme,m,1,2,,a,b,2025-01\n", 2, "Quote fields that contain commas", id="unquoted-comma"
        ),
        pytest.param(",m,1,2,,s,\n", 2, "provider and model must not be empty", id="no-provider"),
        pytest.param("acme,m,1,2,,s,01/02/2025\n", 2, "not YYYY-MM-DD", id="bad-date"),
        pytest.param("acme,m,1,2,,s,\nACME,M,1,2,,s,\n", 3, "repeats line 2", id="duplicate"),
        pytest.param("acme,m,,2,,s,\n", 2, "input_per_m '' is not a number", id="empty-price"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, body, line, message):
    path = write(tmp_path, body)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{line}: .*{message}"):
        load_prices([path])


def test_wrong_header_names_the_expected_one(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("provider,model,input,output\nacme,m,1,2\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=rf"{re.escape(str(path))}:1: .*must be exactly provider,model,input_per_m"
    ):
        load_prices([path])


def test_empty_file_is_a_data_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:1:"):
        load_prices([path])


def test_shipped_file_round_trips_through_csv_module():
    text = resources.files("evals").joinpath("reference_data", "prices.csv").read_text("utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert {r["model"] for r in rows} >= {"magistral-small-2509", "magistral-medium-2509"}
