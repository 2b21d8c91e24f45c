"""Token prices, in USD per million tokens, and the cost of a request.

The harness ships a small table, ``evals/reference_data/prices.csv``, holding only prices
that cite a source. Users add or override rows with files of the same shape (``--prices
PATH``). The header is exactly::

    provider,model,input_per_m,output_per_m,reasoning_per_m,source,date

* ``provider``: the provider name (``mistral``), or ``*`` for a price that holds at any
  provider serving that model name.
* ``model``: the model name as the provider's API spells it (``magistral-small-2509``).
* ``input_per_m``, ``output_per_m``: USD per million prompt / completion tokens, >= 0.
* ``reasoning_per_m``: USD per million reasoning tokens; empty means reasoning tokens are
  billed as output tokens (the usual case).
* ``source``: where the price comes from (a URL or document name); free text, may be empty
  in user files.
* ``date``: the date of the source, ``YYYY-MM-DD`` or ``YYYY-MM``; may be empty.

Example::

    table = load_prices([Path("my-prices.csv")])
    price = table.lookup("mistral", "magistral-small-2509")
    usd = price.cost(prompt_tokens=1_000, completion_tokens=20_000) if price else None
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from evals.errors import ConfigError, DataError

__all__ = ["HEADER", "Price", "PriceTable", "load_prices"]

#: The exact header of a price file.
HEADER: tuple[str, ...] = (
    "provider",
    "model",
    "input_per_m",
    "output_per_m",
    "reasoning_per_m",
    "source",
    "date",
)

_SHIPPED = "evals/reference_data/prices.csv"
_DATE = re.compile(r"\d{4}-\d{2}(-\d{2})?")


@dataclass(frozen=True, slots=True)
class Price:
    """The price of one model at one provider.

    Attributes:
        provider: provider name as written in the file, or ``"*"`` for any provider.
        model: model name as the provider's API spells it.
        input_per_m: USD per million prompt tokens.
        output_per_m: USD per million completion tokens.
        reasoning_per_m: USD per million reasoning tokens, or ``None`` when reasoning is
            billed as output.
        source: where the price comes from.
        date: the date of the source (``YYYY-MM-DD`` or ``YYYY-MM``), or ``""``.
        origin: ``"file:line"`` of the row, so a surprising cost can be traced.
    """

    provider: str
    model: str
    input_per_m: float
    output_per_m: float
    reasoning_per_m: float | None
    source: str
    date: str
    origin: str

    def cost(
        self,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        reasoning_tokens: int | None = None,
    ) -> float:
        """Return the USD cost of one request.

        Usage is read OpenAI-style: ``completion_tokens`` *includes* the reasoning tokens.
        So the cost is ``prompt * input + (completion - reasoning) * output + reasoning *
        (reasoning_per_m or output)``, per million tokens. ``None`` counts as 0 (the
        endpoint did not report that count).

        Args:
            prompt_tokens: prompt tokens reported, or ``None``.
            completion_tokens: completion tokens reported, reasoning included, or ``None``.
            reasoning_tokens: the reasoning part of ``completion_tokens``, or ``None``.

        Returns:
            The cost in USD.

        Raises:
            ValueError: a count is negative, or ``reasoning_tokens`` exceeds
                ``completion_tokens`` (the endpoint then reports reasoning separately,
                which this formula does not assume; add them into ``completion_tokens``).

        Example:
            >>> p = Price("mistral", "m", 0.5, 1.5, None, "", "", "x:2")
            >>> round(p.cost(1_000_000, 2_000_000, 1_000_000), 2)
            3.5
        """
        prompt = _count("prompt_tokens", prompt_tokens)
        completion = _count("completion_tokens", completion_tokens)
        reasoning = _count("reasoning_tokens", reasoning_tokens)
        if reasoning > completion:
            raise ValueError(
                f"reasoning_tokens={reasoning} exceeds completion_tokens={completion}; "
                "the cost assumes completion_tokens includes reasoning (OpenAI-style usage). "
                "Pass completion_tokens as answer + reasoning tokens."
            )
        reasoning_rate = self.output_per_m if self.reasoning_per_m is None else self.reasoning_per_m
        return (
            prompt * self.input_per_m
            + (completion - reasoning) * self.output_per_m
            + reasoning * reasoning_rate
        ) / 1e6


def _count(name: str, value: int | None) -> int:
    if value is None:
        return 0
    if value < 0:
        raise ValueError(f"{name}={value} is negative; token counts must be >= 0 or None.")
    return value


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Price rows in load order: the shipped file first, then each extra file.

    Attributes:
        rows: every row; later rows take precedence over earlier ones for the same key.
    """

    rows: tuple[Price, ...]

    def lookup(
        self,
        provider: str | None,
        model: str,
        canonical: Callable[[str], str] | None = None,
    ) -> Price | None:
        """Find the price of ``model`` at ``provider``.

        Matching is case-insensitive and tried in this order, the first hit winning:

        1. ``provider`` + ``model``;
        2. provider ``"*"`` + ``model``;
        3. when ``canonical`` is given, steps 1 and 2 again comparing ``canonical(model)``
           with ``canonical(row.model)`` (so ``mistral/magistral-small-2509`` can find
           ``magistral-small-2509`` if ``canonical`` strips prefixes).

        Within a step, rows loaded later (user files) win over earlier ones (the shipped
        file). When ``provider`` is ``None`` step 1 accepts a row of any provider.

        Args:
            provider: the provider name, or ``None`` when unknown.
            model: the model name as sent to the API.
            canonical: optional name normaliser; it is applied to row names too.

        Returns:
            The matching price, or ``None`` when no row matches (cost unknown).
        """
        want_provider = provider.casefold() if provider is not None else None

        def find(key: Callable[[str], str]) -> Price | None:
            name = key(model)
            matching = [row for row in reversed(self.rows) if key(row.model) == name]
            for row in matching:
                if want_provider is None or row.provider.casefold() == want_provider:
                    return row
            for row in matching:
                if row.provider == "*":
                    return row
            return None

        found = find(str.casefold)
        if found is None and canonical is not None:
            found = find(lambda name: canonical(name).casefold())
        return found


def load_prices(extra: Sequence[Path] = ()) -> PriceTable:
    """Load the shipped price table, then each extra file in order.

    Args:
        extra: user price files (same header as the shipped one); their rows take
            precedence over the shipped rows and over earlier extra files.

    Returns:
        The combined table.

    Raises:
        ConfigError: an extra file does not exist (``--prices PATH: no such file``).
        DataError: a file has a wrong header or a malformed row; the message names the file
            and the 1-based line number, and says how to fix it.
    """
    shipped = resources.files("evals").joinpath("reference_data", "prices.csv")
    try:
        text = shipped.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(
            f"{_SHIPPED}: the shipped price table is missing from the installed package. "
            "Reinstall the package (its package data must include reference_data/*.csv)."
        ) from exc
    rows = list(_parse(text, _SHIPPED))
    for path in extra:
        if not path.is_file():
            raise ConfigError(
                f"--prices {path}: no such file. Pass the path of a CSV file whose header is "
                f"{','.join(HEADER)}."
            )
        rows.extend(_parse(path.read_text(encoding="utf-8-sig"), str(path)))
    return PriceTable(rows=tuple(rows))


def _parse(text: str, name: str) -> Iterable[Price]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(cell.strip() for cell in header) != HEADER:
        raise DataError(
            f"{name}:1: the header is {','.join(header or [])!r}; "
            f"the first line must be exactly {','.join(HEADER)}."
        )
    seen: dict[tuple[str, str], int] = {}
    for cells in reader:
        line = reader.line_num
        if not cells or all(not cell.strip() for cell in cells):
            continue
        if len(cells) != len(HEADER):
            raise DataError(
                f"{name}:{line}: {len(cells)} fields, expected {len(HEADER)} "
                f"({','.join(HEADER)}). Quote fields that contain commas."
            )
        provider, model, input_s, output_s, reasoning_s, source, date = (
            cell.strip() for cell in cells
        )
        if not provider or not model:
            raise DataError(
                f"{name}:{line}: provider and model must not be empty; "
                "use provider '*' for a price that holds at any provider."
            )
        key = (provider.casefold(), model.casefold())
        if key in seen:
            raise DataError(
                f"{name}:{line}: {provider},{model} repeats line {seen[key]}. "
                "Keep one row per provider and model in a file."
            )
        seen[key] = line
        if date and not _DATE.fullmatch(date):
            raise DataError(
                f"{name}:{line}: date {date!r} is not YYYY-MM-DD or YYYY-MM; fix it or leave it "
                "empty."
            )
        yield Price(
            provider=provider,
            model=model,
            input_per_m=_usd(input_s, "input_per_m", name, line),
            output_per_m=_usd(output_s, "output_per_m", name, line),
            reasoning_per_m=(
                _usd(reasoning_s, "reasoning_per_m", name, line) if reasoning_s else None
            ),
            source=source,
            date=date,
            origin=f"{name}:{line}",
        )


def _usd(text: str, column: str, name: str, line: int) -> float:
    fix = "write a plain number of USD per million tokens, e.g. 0.50 (no '$')"
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{name}:{line}: {column} {text!r} is not a number; {fix}.") from None
    if not math.isfinite(value) or value < 0:
        raise DataError(f"{name}:{line}: {column} {text!r} must be a finite number >= 0; {fix}.")
    return value
