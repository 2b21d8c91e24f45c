"""Is a math answer equivalent to the gold? Layered, cheap layers first.

``check_equivalence(gold, answer)`` takes the gold first. The comparison is asymmetric
where the gold decides what is meant:

* **degrees**: ``^\\circ``/"degrees" are dropped on both sides, so "30" equals gold
  "30^\\circ" and "30^\\circ" equals gold "30"; an answer in radians ("\\frac{\\pi}{6}")
  does not equal a gold in degrees ("30^\\circ"), nor the reverse.
* **percentages**: MATH writes the number of percent ("10" for "what percent ...", or
  "25\\%"). An answer with a percent sign equals a gold without one when either its number
  of percent or its value matches ("25\\%" equals gold "25" and gold "0.25"); a gold with a
  percent sign accepts the number of percent or the value ("25", "25\\%", "0.25"). A bare
  "0.25" never equals gold "25".
* **units**: trailing units (``\\text{ cm}``, "cents", ``\\mbox{ inches}^2``) are dropped
  on both sides; two known units that differ ("5 m" vs gold "5 cm") are not equal.
* **lists**: a gold list ("-2, 1") or set ("\\{1, 2\\}") matches its elements in any
  order; a parenthesised gold ("(1, 2)": a point, a vector or an interval) matches in
  order, brackets included, so "(1, 2]" differs from "(1, 2)" and "(2, 1)" from "(1, 2)".
  A bare "1, 2" is read in order against a gold tuple.
* **equations**: "x = 3" equals gold "3", and "3" equals gold "x = 3" (gold's left side a
  single variable); two equations are equal when their sides differ by a constant
  factor ("y = 2x + 3" and "2x - y + 3 = 0"). One-variable inequalities become intervals
  ("x > 2" equals gold "(2, \\infty)"; "x \\ge 2" does not), in either direction ("5 > x \\ge
  2" is "[2, 5)"); an absolute-value inequality in one variable becomes its interval or
  union ("|x - 3| < 2" equals "(1, 5)", "|x - 3| > 2" equals "(-\\infty, 1) \\cup (5, \\infty)").
* **intervals and lists**: an interval with a closed end ("[1, 5]", "(1, 5]") never equals
  the bare list of its ends ("1, 5", "1 and 5"), in either direction: one is every number
  between, the other two numbers. (An open "(1, 5)" still equals "1, 5", which may be a
  point written without brackets.)
* **the empty set**: ``\\emptyset``, ``\\varnothing``, ``\\{\\}``, "∅", "the empty set",
  "no solution", "no real solutions" are one value, unequal to anything else ("\\{0\\}").
* **words**: a number written out ("twelve", "one hundred five", "three fourths") or
  scientific notation in words ("1.5 times 10 to the minus 3") is that number; a
  one-word text answer may carry a leading article or preposition ("on Tuesday" equals
  gold "\\text{Tuesday}").

Numbers are exact: decimals are rationals ("0.5" equals "\\frac{1}{2}", "0.50001" does
not), a decimal never equals an irrational gold ("1.414" vs "\\sqrt{2}"), and a mixed
number "1\\frac{4}{5}" means 9/5. Expressions are compared by an arithmetic evaluator
(``evals.grading.math_expr``) at sample points - exactly in rationals where the expression
is rational, in floating point (relative tolerance 1e-9) where it has radicals, pi, logs or
trig - and otherwise by sympy (parsed with ``latex2sympy2_extended``, then structural
equality, high-precision numeric checks and ``simplify``).

Untrusted input is bounded: answers over 2,000 characters, more than 40 levels of braces,
or values too large to evaluate are judged not equal with a reason before sympy sees them.
The hard guarantee against a hang is the worker pool's time limit
(``evals.grading.pool``); everything here is pure and synchronous so it can run there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from evals.grading.math_expr import (
    MAX_EXPRESSION,
    TooLarge,
    compare_expressions,
    constant_value,
    linear_form,
    number_from_words,
    sympy_compare,
    to_number,
)
from evals.grading.math_extract import extract_math_answer

__all__ = ["Verdict", "check_equivalence", "grade_math_answer"]

MAX_ANSWER = 2000
MAX_DEPTH = 40
MAX_ITEMS = 40


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one comparison, with what it was computed from.

    Attributes:
        equal: the answer is equivalent to the gold.
        reason: the deciding layer, e.g. "string match", "numeric match", "numbers differ",
            "expression match (exact at sample points)", "sympy simplify",
            "interval endpoint open vs closed", "no parse", "too large".
        gold_norm: the gold after normalisation.
        answer_norm: the answer after normalisation.
    """

    equal: bool
    reason: str
    gold_norm: str
    answer_norm: str


# -- normalisation ------------------------------------------------------------------------------

_REPLACEMENTS = (
    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"),
    ("\\mbox", "\\text"), ("\\textbf", "\\text"), ("\\textrm", "\\text"), ("\\mathrm", "\\text"),
    ("\\mathbf", "\\text"), ("\\textit", "\\text"), ("\\mathit", "\\text"),
    ("\\operatorname", "\\text"), ("\\displaystyle", ""), ("\\langle", "("), ("\\rangle", ")"),
    ("\\lbrace", "\\{"), ("\\rbrace", "\\}"), ("\\lbrack", "["), ("\\rbrack", "]"),
    ("\\leqslant", "\\le"), ("\\geqslant", "\\ge"), ("\\leq", "\\le"), ("\\geq", "\\ge"),
    ("\\lt", "<"), ("\\gt", ">"), ("\\neq", "\\ne"), ("\\infty", "\\infty "),
    ("−", "-"), ("–", "-"), ("×", "\\times "), ("·", "\\cdot "), ("π", "\\pi "),
    ("∞", "\\infty "), ("≤", "\\le "), ("≥", "\\ge "), ("√", "\\sqrt"), ("\\$", ""), ("$", ""),
    ("\\lvert", "|"), ("\\rvert", "|"), ("\\vert", "|"), ("∅", "\\emptyset "),
    ("\\varnothing", "\\emptyset"),
)
# "1.5 \times 10^-3": an unbraced negative exponent of ten means the whole exponent.
_NEGATIVE_POWER = re.compile(r"10\s*\^\s*-\s*(\d+)")
# The empty set as models write it; one spelling, so both sides compare as strings.
_EMPTY_SET = re.compile(
    r"\\emptyset|\\\{\s*\\\}|\{\s*\}|(?:the\s+)?(?:empty\s+set|null\s+set)"
    r"|(?:there\s+(?:is|are)\s+)?no\s+(?:real\s+)?(?:solutions?|values?\s+of\s+[a-z])",
    re.IGNORECASE)
EMPTY = "\\emptyset"
_SPACING = re.compile(r"\\\\|\\[,;:! ]|\\q?quad|~")
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])\s*\.?")
_THOUSANDS_MARK = re.compile(r"(\d)\s*(?:,\\!|\{,\})\s*(?=\d{3})")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|°|\\degree|\s*\\text\{\s*degrees?\s*\}"
                      r"|\s+degrees?$")
_PERCENT = re.compile(r"\\%|%|\s*\\text\{\s*percent\s*\}|\s+percent$")
_UNIT = re.compile(r"^(?P<core>.*?[\w}).])\s*(?:\\text\{\s*(?P<t>[a-zA-Z][a-zA-Z .]*)\}"
                   r"|\s(?P<w>[a-zA-Z]{2,}(?:\s+[a-zA-Z]{2,})*))\s*(?P<p>\^\s*\{?[23]\}?)?$")
_KNOWN_UNITS = {
    "mm": "length", "cm": "length", "m": "length", "km": "length", "meter": "length",
    "metre": "length", "centimeter": "length", "inch": "length", "in": "length",
    "ft": "length", "feet": "length", "foot": "length", "yard": "length", "mile": "length",
    "g": "mass", "gram": "mass", "kg": "mass", "pound": "mass", "lb": "mass",
    "second": "time", "sec": "time", "minute": "time", "min": "time", "hour": "time",
    "day": "time", "week": "time", "year": "time", "cent": "money", "dollar": "money",
    "mi": "length", "yd": "length", "kmh": "speed", "mph": "speed",
}


@dataclass(frozen=True, slots=True)
class _Prepared:
    text: str
    degrees: bool
    percent: bool
    unit: str | None


def _clean(text: str) -> str:
    out = _THOUSANDS_MARK.sub(r"\1", text.strip())
    for old, new in _REPLACEMENTS:
        if old in out:
            out = out.replace(old, new)
    out = _SIZING.sub("", out)
    out = _NEGATIVE_POWER.sub(r"10^{-\1}", out)
    out = _SPACING.sub(lambda m: m.group(0) if m.group(0) == "\\\\" else " ", out)
    out = re.sub(r"\\text\{\s*\}", "", out)
    out = re.sub(r"\s+", " ", out).strip()
    while out and out[-1] in ".,;:":
        out = out[:-1].rstrip()
    return out


def _unit_key(unit: str) -> str:
    word = re.sub(r"[^a-z]", "", unit.lower())
    for suffix in ("es", "s"):
        if word.endswith(suffix) and word[: -len(suffix)] in _KNOWN_UNITS:
            return word[: -len(suffix)]
    return word


def _prepare(text: str) -> _Prepared:
    out = _clean(text)
    plain = re.sub(r"\\text\{([^{}]*)\}", r"\1", out).strip()
    if _EMPTY_SET.fullmatch(plain):
        return _Prepared(EMPTY, False, False, None)
    spelled = number_from_words(plain) if re.search(r"[a-z]{3}", plain) else None
    if spelled is not None:  # "twelve", "one half", "1.5 times 10 to the minus 3"
        out = str(spelled)
    out, degrees = _DEGREES.subn("", out)
    out, percent = _PERCENT.subn("", out)
    unit: str | None = None
    match = _UNIT.match(out.strip())
    if match is not None and re.search(r"\d", match.group("core")):
        words = match.group("t") or match.group("w") or ""
        # Plain words must look like units: "5 cm", "12 inches"; "2 ab" is a product.
        plain_ok = match.group("w") is None or all(
            len(w) > 2 or _unit_key(w) in _KNOWN_UNITS for w in words.split())
        if plain_ok and not re.fullmatch(r"(?:and|or|i|e|pi)", words.strip()):
            unit = _unit_key(words) + (re.sub(r"\D", "", match.group("p") or ""))
            out = match.group("core")
    return _Prepared(out.strip().rstrip(".,;").strip(), degrees > 0, percent > 0, unit)


# -- structure ----------------------------------------------------------------------------------

SeqKind = Literal["tuple", "set", "list"]


@dataclass(frozen=True, slots=True)
class _Seq:
    kind: SeqKind
    open: str
    close: str
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Matrix:
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class _Eq:
    lhs: str
    rhs: str


@dataclass(frozen=True, slots=True)
class _Union:
    parts: tuple[_Node, ...]


_Node = str | _Seq | _Matrix | _Eq | _Union

_OPENERS = {"(": 1, "[": 1, "{": 1}
_CLOSERS = {")": 1, "]": 1, "}": 1}
_SIMPLE_VAR = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?$|^\\[a-zA-Z]+$")
_INEQ = re.compile(r"\\le|\\ge|<|>")
_THOUSANDS_NUMBER = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_MATRIX = re.compile(r"^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$",
                     re.DOTALL)
_SCALED_MATRIX = re.compile(r"^([^\\]*?|\\frac\{[^{}]*\}\{[^{}]*\}\s*)"
                            r"(\\begin\{([pbBvV]?matrix)\}.*\\end\{\3\})$", re.DOTALL)
_LIST_WORDS = re.compile(r"\s*(?:\\text\{\s*(?:and|or)\s*\}|\s(?:and|or)\s)\s*")


def _split_top(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split at separators outside any (), [], {} (interval brackets may be mixed)."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
        elif depth == 0:
            for sep in separators:
                if text.startswith(sep, i):
                    parts.append(text[start:i])
                    start = i + len(sep)
                    i = start - 1
                    break
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _wraps_whole(text: str) -> bool:
    """True when the first bracket closes at the last character."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


def _inequality(text: str) -> _Node | None:
    """One-variable inequalities as intervals: "x > 2" -> (2, \\infty)."""
    pieces = re.split(r"(\\le|\\ge|<|>)", text)
    if len(pieces) not in (3, 5):
        return None
    values = [p.strip() for p in pieces[0::2]]
    ops = pieces[1::2]
    var_at = [i for i, v in enumerate(values) if _SIMPLE_VAR.match(v)]
    if len(var_at) != 1 or any(not v for v in values):
        return None
    if len(values) == 3 and (var_at[0] != 1 or len({o in ("<", "\\le") for o in ops}) != 1):
        return None
    if len(values) == 3:
        low, high = (values[0], values[2]) if ops[0] in ("<", "\\le") else (values[2], values[0])
        low_op, high_op = (ops[0], ops[1]) if ops[0] in ("<", "\\le") else (ops[1], ops[0])
        closed = ("\\le", "\\ge")  # "5 \ge x > 2" is (2, 5]: the chain may run either way
        return _Seq("tuple", "[" if low_op in closed else "(",
                    "]" if high_op in closed else ")", (low, high))
    var_first = var_at[0] == 0
    bound = values[1] if var_first else values[0]
    op = ops[0]
    if not var_first:  # "2 < x" is "x > 2"
        op = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}[op]
    if op in ("<", "\\le"):
        return _Seq("tuple", "(", "]" if op == "\\le" else ")", ("-\\infty", bound))
    return _Seq("tuple", "[" if op == "\\ge" else "(", ")", (bound, "\\infty"))


_ABS = re.compile(r"^\|(?P<inner>[^|]+)\|\s*(?P<op>\\le|\\ge|<|>)\s*(?P<bound>[^<>|]+)$"
                  r"|^(?P<bound2>[^<>|]+?)\s*(?P<op2>\\le|\\ge|<|>)\s*\|(?P<inner2>[^|]+)\|$")
_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}


def _fmt(value: Fraction) -> str:
    return str(value) if value.denominator == 1 else f"({value})"


def _abs_inequality(text: str) -> _Node | None:
    """``|a x + b| < c`` (or ``\\le``, ``>``, ``\\ge``, either side first) as the interval
    or union it means: "|x - 3| < 2" -> (1, 5), "|2x - 5| > 1" -> (-inf, 2) U (3, inf),
    "|x| < -1" -> the empty set. ``None`` when the inside is not linear in one variable, the
    bound is not a real constant, or the set is all the reals (no interval notation here)."""
    match = _ABS.match(text)
    if match is None:
        return None
    inner = match.group("inner") or match.group("inner2")
    bound = (match.group("bound") or match.group("bound2")).strip()
    op = match.group("op") or _FLIP[match.group("op2")]
    linear = linear_form(inner)
    size = constant_value(bound)
    if linear is None or size is None:
        return None
    _, slope, intercept = linear
    inside = op in ("<", "\\le")
    if size < 0 or (size == 0 and op == "<"):
        return EMPTY if inside else None
    if size == 0 and op != "\\le":
        return None  # |x - 3| > 0 is a punctured line; |x - 3| >= 0 all of it
    exact = to_number(bound)
    if exact is not None:
        ends = sorted(((-exact - intercept) / slope, (exact - intercept) / slope))
        low, high = _fmt(ends[0]), _fmt(ends[1])
    else:  # an irrational bound: the ends as expressions, ordered by the slope's sign
        low, high = (f"\\frac{{-({bound})-{_fmt(intercept)}}}{{{_fmt(slope)}}}",
                     f"\\frac{{({bound})-{_fmt(intercept)}}}{{{_fmt(slope)}}}")
        if slope < 0:
            low, high = high, low
    closed = op in ("\\le", "\\ge")
    if inside:
        return _Seq("tuple", "[" if closed else "(", "]" if closed else ")", (low, high))
    return _Union((_Seq("tuple", "(", "]" if closed else ")", ("-\\infty", low)),
                   _Seq("tuple", "[" if closed else "(", ")", (high, "\\infty"))))


def _expand_pm(text: str) -> list[str]:
    for sign in ("\\pm", "\\mp"):
        if text.count(sign) == 1:
            first, second = ("+", "-") if sign == "\\pm" else ("-", "+")
            return [text.replace(sign, first), text.replace(sign, second)]
    return [text]


def _items(parts: list[str], depth: int) -> tuple[_Node, ...]:
    nodes: list[_Node] = []
    for part in parts:
        nodes.extend(_structure(p, depth + 1) for p in _expand_pm(part))
    if len(nodes) > MAX_ITEMS:
        raise TooLarge(f"more than {MAX_ITEMS} elements")
    return tuple(nodes)


def _structure(text: str, depth: int = 0) -> _Node:
    """Read a cleaned answer as a scalar string or a structure of them."""
    if depth > 8:
        raise TooLarge("structures nested more than 8 deep")
    text = re.sub(r"^[a-zA-Z]\s*\\in\s*", "", text.strip())
    matrix = _MATRIX.match(text)
    if matrix is not None:
        rows = [r for r in re.split(r"\\\\", matrix.group(2)) if r.strip()]
        return _Matrix(tuple(tuple(c.strip() for c in r.split("&")) for r in rows))
    scaled = _SCALED_MATRIX.match(text)
    if scaled is not None and _MATRIX.match(scaled.group(2)):  # "\frac{1}{49}\begin{pmatrix}"
        inner = _structure(scaled.group(2), depth + 1)
        factor = re.sub(r"\\cdot\s*$|\\times\s*$", "", scaled.group(1)).strip()
        if isinstance(inner, _Matrix) and factor:
            return _Matrix(tuple(tuple(f"({factor})\\cdot({c})" for c in row)
                                 for row in inner.rows))
    if _THOUSANDS_NUMBER.match(text):
        return text.replace(",", "")
    union = _split_top(text, ("\\cup",))
    if len(union) > 1:
        return _Union(_items(union, depth))
    inequality = _INEQ.search(text) is not None
    words_as_commas = _LIST_WORDS.sub(", ", text)
    if inequality:
        pieces = _split_top(words_as_commas, (",",))
        found = [_inequality(p) for p in pieces]
        if len(pieces) > 1 and all(f is not None for f in found):
            return _Union(tuple(f for f in found if f is not None))
    if text.startswith("\\{") and text.endswith("\\}"):
        return _Seq("set", "{", "}", _items(_split_top(text[2:-2], (",", ";")), depth))
    listed = _split_top(words_as_commas, (",", ";"))
    if len(listed) > 1 and all(listed):
        return _Seq("list", "", "", _items(listed, depth))
    if text[:1] in "([" and text[-1:] in ")]" and _wraps_whole(text):
        coordinates = _split_top(text[1:-1], (",",))
        if len(coordinates) > 1:
            return _Seq("tuple", text[0], text[-1], _items(coordinates, depth))
    if inequality:
        interval = _abs_inequality(text) if "|" in text else _inequality(text)
        if interval is not None:
            return interval
    sides = _split_top(text, ("=",))
    if len(sides) > 1 and all(sides):
        return _Eq(sides[0], sides[-1])
    expanded = _expand_pm(text)
    if len(expanded) > 1:
        return _Seq("set", "{", "}", tuple(expanded))
    return text


# -- comparison ---------------------------------------------------------------------------------

_Result = tuple[bool, str]
_TEXT = re.compile(r"^\\text\{([^{}]*)\}$")
_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?(?:$|[\s.:)])")
_BASE = re.compile(r"^(\w+)_\{?\(?(\d+)\)?\}?$")


def _squash(text: str) -> str:
    return re.sub(r"\s+|\\text\{\s*\}", "", text)


def _words(text: str) -> str:
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text).lower()
    # "on Tuesday", "the east": a leading article or preposition of a one-word answer.
    text = re.sub(r"^(?:the|an?|on|at|in)\s+(?=\S+$)", "", text.strip())
    return re.sub(r"[^a-z0-9]", "", text)


def _scalar(gold: str, answer: str) -> _Result:
    if _squash(gold) == _squash(answer):
        return True, "string match"
    if EMPTY in (gold, answer):
        return False, "the empty set against a value"
    if _is_infinite(gold) or _is_infinite(answer):
        same = _squash(gold).lstrip("+") == _squash(answer).lstrip("+")
        return same, "infinity match" if same else "infinity differs"
    if len(answer) > MAX_EXPRESSION:
        return False, f"answer expression too long ({len(answer)} chars)"
    text = _TEXT.match(gold)
    if text is not None:
        choice = _CHOICE.match(text.group(1).strip())
        if choice is not None and len(text.group(1).strip()) <= 3:
            found = _CHOICE.match(_words(answer).upper() if len(_words(answer)) == 1
                                  else re.sub(r"\\text\{([^{}]*)\}", r"\1", answer).strip())
            same = found is not None and found.group(1).upper() == choice.group(1).upper()
            return same, "choice match" if same else "choice differs"
        if re.search(r"[a-zA-Z]{2}", text.group(1)):
            same = _words(gold) == _words(answer)
            return same, "text match" if same else "text differs"
    base = _BASE.match(_squash(gold))
    if base is not None:
        found = _BASE.match(_squash(answer))
        digits, radix = (found.group(1), found.group(2)) if found else (_squash(answer), None)
        same = (digits.lstrip("0").lower() == base.group(1).lstrip("0").lower()
                and radix in (None, base.group(2)))
        return same, f"base-{base.group(2)} digits match" if same else "base digits differ"
    g_num, a_num = to_number(gold), to_number(answer)
    if g_num is not None and a_num is not None:
        return (True, "numeric match") if g_num == a_num else (False, "numbers differ")
    decided = compare_expressions(gold, answer)
    if decided is not None:
        return decided
    return sympy_compare(gold, answer)


def _ordered(gold: tuple[_Node, ...], answer: tuple[_Node, ...]) -> _Result:
    if len(gold) != len(answer):
        return False, f"different number of elements ({len(answer)} vs gold {len(gold)})"
    reasons = []
    for g, a in zip(gold, answer, strict=True):
        same, reason = _compare(g, a)
        if not same:
            return False, f"element differs: {reason}"
        reasons.append(reason)
    return True, "elements match in order (" + ", ".join(sorted(set(reasons))) + ")"


def _unordered(gold: tuple[_Node, ...], answer: tuple[_Node, ...]) -> _Result:
    if len(gold) != len(answer):
        return False, f"different number of elements ({len(answer)} vs gold {len(gold)})"
    left = list(answer)
    for g in gold:
        for i, a in enumerate(left):
            if _compare(g, a)[0]:
                del left[i]
                break
        else:
            return False, "elements differ"
    return True, "elements match in any order"


def _is_infinite(node: _Node) -> bool:
    return isinstance(node, str) and node.replace(" ", "").lstrip("+-") in ("\\infty", "oo")


def _closed_interval(node: _Seq) -> bool:
    """A two-element tuple with a square bracket: an interval with a closed end."""
    return (node.kind == "tuple" and len(node.items) == 2
            and ("[" in node.open or "]" in node.close))


def _compare_seq(gold: _Seq, answer: _Seq) -> _Result:
    if {gold.kind, answer.kind} == {"tuple", "list"} and (
            _closed_interval(gold) or _closed_interval(answer)):
        # "[1, 5]" is every number from 1 to 5, "1, 5" two numbers: never the same answer.
        return False, "an interval against a list of its ends"
    if gold.kind == "tuple" and answer.kind == "tuple":
        if len(gold.items) == len(answer.items):
            for g_br, a_br, end in ((gold.open, answer.open, gold.items[0]),
                                    (gold.close, answer.close, gold.items[-1])):
                if g_br != a_br and not _is_infinite(end):
                    return False, ("interval endpoint open vs closed" if len(gold.items) == 2
                                   else "brackets differ")
        return _ordered(gold.items, answer.items)
    if gold.kind == "tuple" or answer.kind == "tuple":
        if "tuple" in (gold.kind, answer.kind) and "set" in (gold.kind, answer.kind):
            return False, "a set against a tuple"
        return _ordered(gold.items, answer.items)
    return _unordered(gold.items, answer.items)


def _compare(gold: _Node, answer: _Node) -> _Result:
    if isinstance(gold, str) and isinstance(answer, str):
        return _scalar(gold, answer)
    if isinstance(gold, _Eq) and isinstance(answer, _Eq):
        if (_SIMPLE_VAR.match(gold.lhs) and _SIMPLE_VAR.match(answer.lhs)
                and _squash(gold.lhs) == _squash(answer.lhs)):
            return _compare(_structure(gold.rhs), _structure(answer.rhs))
        equation = compare_expressions(f"{gold.lhs}-({gold.rhs})",
                                       f"{answer.lhs}-({answer.rhs})", proportional=True)
        return equation if equation is not None else (False, "equations differ")
    if isinstance(gold, _Eq):
        if _SIMPLE_VAR.match(gold.lhs):
            return _compare(_structure(gold.rhs), answer)
        return False, "an equation was expected"
    if isinstance(answer, _Eq):
        return _compare(gold, _structure(answer.rhs))
    if isinstance(gold, _Seq) and isinstance(answer, _Seq):
        return _compare_seq(gold, answer)
    if isinstance(gold, _Union) and isinstance(answer, _Union):
        return _unordered(gold.parts, answer.parts)
    if isinstance(gold, _Matrix) or isinstance(answer, _Matrix):
        if isinstance(gold, str) or isinstance(answer, str):  # "\frac{1}{2}\begin{pmatrix}..."
            return sympy_compare(_unparse(gold), _unparse(answer))
        return _compare_matrix(gold, answer)
    if isinstance(answer, _Seq) and len(answer.items) == 1:
        return _compare(gold, answer.items[0])
    # "\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}": one value in several forms.
    if (isinstance(gold, str) and isinstance(answer, _Seq) and answer.kind == "list"
            and all(_compare(gold, item)[0] for item in answer.items)):
        return True, "every listed form matches"
    return False, f"{_shape(answer)} given, {_shape(gold)} expected"


def _compare_matrix(gold: _Node, answer: _Node) -> _Result:
    def flat(node: _Node) -> tuple[tuple[int, int], tuple[_Node, ...]] | None:
        if isinstance(node, _Matrix):
            width = max(len(r) for r in node.rows) if node.rows else 0
            if any(len(r) != width for r in node.rows):
                return None
            return (len(node.rows), width), tuple(c for r in node.rows for c in r)
        if isinstance(node, _Seq) and node.kind == "tuple":
            return (len(node.items), 1), node.items  # a vector written as a tuple
        return None

    g, a = flat(gold), flat(answer)
    if g is None or a is None:
        return False, f"{_shape(answer)} given, {_shape(gold)} expected"
    g_shape, a_shape = g[0], a[0]
    if isinstance(gold, _Matrix) and isinstance(answer, _Matrix) and g_shape != a_shape:
        return False, f"matrix shape {a_shape} vs gold {g_shape}"
    return _ordered(g[1], a[1])


def _unparse(node: _Node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, _Matrix):
        body = " \\\\ ".join(" & ".join(row) for row in node.rows)
        return f"\\begin{{pmatrix}} {body} \\end{{pmatrix}}"
    return ""


def _shape(node: _Node) -> str:
    if isinstance(node, _Seq):
        return {"tuple": "a tuple", "set": "a set", "list": "a list"}[node.kind]
    return {_Matrix: "a matrix", _Eq: "an equation", _Union: "a union"}.get(
        type(node), "a single value")


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "})]":
            depth -= 1
    return deepest


def check_equivalence(gold: str, answer: str) -> Verdict:
    """Judge ``answer`` equivalent to ``gold`` (gold first: it decides the conventions).

    See the module docstring for the conventions (degrees, percentages, units, lists,
    intervals, equations). Pure and synchronous; meant to run in a worker process with
    a time limit, since sympy can be slow on legitimate input.

    Args:
        gold: the reference answer as the dataset writes it (LaTeX, no ``$``).
        answer: the extracted answer (see ``extract_math_answer``).

    Returns:
        A ``Verdict``; input over the caps gives ``equal=False`` with the cap as reason.

    Example:
        >>> check_equivalence("\\\\frac{1}{2}", "0.5").reason
        'numeric match'
        >>> check_equivalence("(1, 2)", "[1, 2)").reason
        'interval endpoint open vs closed'
    """
    prepared_gold = _prepare(gold)
    g_text = prepared_gold.text
    if len(answer) > MAX_ANSWER:
        return Verdict(False, f"answer too long ({len(answer)} chars > {MAX_ANSWER})",
                       g_text, answer[:80] + "...")
    if _depth(answer) > MAX_DEPTH:
        return Verdict(False, f"answer nested more than {MAX_DEPTH} levels", g_text,
                       answer[:80] + "...")
    prepared = _prepare(answer)
    a_text = prepared.text
    if not a_text:
        return Verdict(False, "empty answer", g_text, a_text)
    if (prepared.unit and prepared_gold.unit and prepared.unit != prepared_gold.unit
            and _KNOWN_UNITS.get(prepared.unit.rstrip("23")) is not None
            and _KNOWN_UNITS.get(prepared_gold.unit.rstrip("23")) is not None):
        return Verdict(False, f"different units ({prepared.unit} vs gold {prepared_gold.unit})",
                       g_text, a_text)
    try:
        gold_node = _structure(g_text)
        same, reason = _compare(gold_node, _structure(a_text))
        if not same and prepared.percent != prepared_gold.percent:
            # "25\%" for gold 0.25, or 0.25 for gold "25\%": the same quantity.
            scaled = (f"\\frac{{{a_text}}}{{100}}" if prepared.percent
                      else f"100\\cdot({a_text})")
            if _compare(gold_node, _structure(scaled))[0]:
                same, reason = True, "percentage match"
    except TooLarge as exc:
        return Verdict(False, f"too large: {exc}", g_text, a_text)
    except RecursionError:
        return Verdict(False, "too large: nesting", g_text, a_text)
    return Verdict(same, reason, g_text, a_text)


def grade_math_answer(gold: str, response_text: str) -> dict[str, object]:
    """Extract the final answer of a response and compare it with the gold.

    Module-level and returning plain data, so it runs in a ``GradingPool`` worker::

        verdict = await pool.call(grade_math_answer, sample.target, text)

    Returns:
        ``{"extracted", "correct", "reason", "gold_norm", "answer_norm", "how"}``; no answer
        found gives ``correct=False`` with reason "no answer found".
    """
    extracted, how = extract_math_answer(response_text)
    if extracted is None:
        return {"extracted": None, "correct": False, "reason": "no answer found",
                "gold_norm": _prepare(gold).text, "answer_norm": None, "how": how}
    verdict = check_equivalence(gold, extracted)
    return {"extracted": extracted, "correct": verdict.equal, "reason": verdict.reason,
            "gold_norm": verdict.gold_norm, "answer_norm": verdict.answer_norm, "how": how}
