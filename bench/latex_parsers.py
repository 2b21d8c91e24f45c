"""Which LaTeX parser the math grader uses, and why: how many MATH-500 gold answers each
candidate reads as written, and how fast.

Candidates: ``latex2sympy2_extended`` (what the grader uses; Math-Verify's parser too) and
sympy's own ``parse_latex`` with its lark backend. Needs ``pip install lark`` for the
second (not a dependency of the harness). Usage:

    python bench/latex_parsers.py [../shared/data/math500/test.jsonl]
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "math500" / "test.jsonl"


def main() -> None:
    warnings.simplefilter("ignore")
    from latex2sympy2_extended import latex2sympy
    from sympy.parsing.latex import parse_latex

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    golds = [json.loads(line)["answer"] for line in path.read_text().splitlines() if line]
    parsers: tuple[tuple[str, Callable[[str], Any]], ...] = (
        ("latex2sympy2_extended", latex2sympy),
        ("sympy parse_latex (lark)", lambda text: parse_latex(text, backend="lark")),
    )
    for name, parse in parsers:
        parsed, started = 0, time.perf_counter()
        for gold in golds:
            try:
                parse(gold)
            except Exception:  # noqa: BLE001, S112  any failure to parse counts as one
                continue
            parsed += 1
        each = (time.perf_counter() - started) / len(golds) * 1000
        print(f"{name:<26} {parsed}/{len(golds)} parsed, {each:.1f} ms each")


if __name__ == "__main__":
    main()
