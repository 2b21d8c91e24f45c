"""The expression layer of math grading: exact numbers, an arithmetic evaluator, sympy.

``evals.grading.math_compare`` handles normalisation and structure (tuples, sets, intervals,
equations) and hands single values here, cheapest test first:

1. ``to_number``: integers, decimals, ``\\frac{a}{b}``, ``a/b``, mixed numbers,
   scientific notation, thousands separators, repeating decimals (``0.1\\overline{6}``),
   as exact ``Fraction`` s.
2. ``compare_expressions``: a small LaTeX arithmetic reader (numbers, variables,
   ``+ - * / ^ !``, ``\\frac``, ``\\sqrt``, ``\\binom``, ``\\pi``, ``e``, ``i``, trig, logs,
   ``|x|``) whose trees are evaluated, never ``eval``-ed, at a few sample points. Rational
   expressions are evaluated exactly in ``Fraction`` at rational points (a polynomial
   identity test); anything with radicals, pi, logs or trig in complex floating point
   with a relative tolerance of 1e-9 (plus 1e-12 absolute). It answers ``None`` when the
   input is outside its subset, so the caller falls back to sympy.
3. ``sympy_compare``: ``latex2sympy2_extended`` (the ANTLR LaTeX parser Math-Verify uses;
   sympy's own ``lark`` backend is slower by ~10x and could not read a sixth of MATH-500's
   gold answers), then structural equality, a 30-digit numeric check and ``simplify``.

Values too large to compute (``2^{2^{2^{2^{2}}}}``, ``10^{10}!``) raise ``TooLarge`` instead of
running for ever; sympy is only reached through the caps in ``sympy_compare``.
"""

from __future__ import annotations

import cmath
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

__all__ = [
    "MAX_EXPRESSION",
    "TooLarge",
    "compare_expressions",
    "constant_value",
    "linear_form",
    "number_from_words",
    "sympy_compare",
    "to_number",
]

MAX_EXPRESSION = 1000
_MAX_BITS = 100_000  # exact integers beyond ~30,000 digits are "too large"
_TOLERANCE = 1e-9

Value = Fraction | complex


class TooLarge(ValueError):
    """A value or an input is too large to compare within the caps."""


class _Unsupported(Exception):
    """The input is outside the evaluator's subset (the caller falls back to sympy)."""


# -- numbers --------------------------------------------------------------------------------

_DECIMAL = r"(?:\d+\.?\d*|\.\d+)"
_ARG = r"(?:\{\s*([+-]?" + _DECIMAL + r")\s*\}|(\d))"
_PLAIN = re.compile(_DECIMAL)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FRAC = re.compile(r"\\frac\s*" + _ARG + r"\s*" + _ARG)
_SLASH = re.compile(r"(" + _DECIMAL + r")/(" + _DECIMAL + r")")
_MIXED = re.compile(r"(\d+)\s*\\frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))")
_SCI = re.compile(r"(" + _DECIMAL + r")\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*"
                  r"(?:\{\s*([+-]?\d+)\s*\}|(\d))|(" + _DECIMAL + r")[eE]([+-]?\d+)")


# A repeating decimal: 0.\overline{3}, 1.2\overline{45} (also with \dot or \bar).
_REPEATING = re.compile(r"(\d*)\.(\d*)\\(?:overline|bar|dot)\s*(?:\{\s*(\d+)\s*\}|(\d))")


def _repeating(m: re.Match[str]) -> Fraction:
    whole, fixed, cycle = m.group(1) or "0", m.group(2), m.group(3) or m.group(4)
    shift = Fraction(10) ** len(fixed)
    value = Fraction(int(whole)) + (Fraction(int(fixed)) / shift if fixed else 0)
    return value + Fraction(int(cycle), 10 ** len(cycle) - 1) / shift


def _fraction(text: str) -> Fraction:
    return Fraction(text.removesuffix("."))


def to_number(text: str) -> Fraction | None:
    """The exact value of a plain number, or ``None`` when ``text`` is not one.

    Example:
        >>> to_number("1\\\\frac{4}{5}"), to_number("-.25"), to_number("6.72e-5")
        (Fraction(9, 5), Fraction(-1, 4), Fraction(21, 312500))
    """
    t = text.strip()
    while len(t) > 2 and t[0] == "{" and t[-1] == "}" and "{" not in t[1:-1]:
        t = t[1:-1].strip()
    sign = 1
    while t[:1] in ("-", "+") and t:
        sign = -sign if t[0] == "-" else sign
        t = t[1:].strip()
    if not t or len(t) > 200:
        return None
    if _PLAIN.fullmatch(t):
        return sign * _fraction(t)
    if _THOUSANDS.fullmatch(t):
        return sign * _fraction(t.replace(",", ""))
    if (m := _FRAC.fullmatch(t)) is not None:
        num, den = _fraction(m.group(1) or m.group(2)), _fraction(m.group(3) or m.group(4))
        return sign * num / den if den else None
    if (m := _SLASH.fullmatch(t)) is not None:
        num, den = _fraction(m.group(1)), _fraction(m.group(2))
        return sign * num / den if den else None
    if (m := _MIXED.fullmatch(t)) is not None:
        top, bottom = int(m.group(2) or m.group(3)), int(m.group(4) or m.group(5))
        if bottom and top < bottom:
            return sign * (Fraction(int(m.group(1))) + Fraction(top, bottom))
        return None
    if (m := _REPEATING.fullmatch(t)) is not None:
        return sign * _repeating(m)
    if (m := _SCI.fullmatch(t)) is not None:
        mantissa = m.group(1) or m.group(4)
        exponent = int(m.group(2) or m.group(3) or m.group(5))
        if abs(exponent) > 400:
            return None
        return sign * _fraction(mantissa) * Fraction(10) ** exponent
    return number_from_words(text)


# -- numbers in words ---------------------------------------------------------------------

_CARDINALS = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS_WORDS = {w: 10 * i for i, w in enumerate(
    ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], start=2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_ORDINALS = {w: i for i, w in enumerate(["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth"])}
# Denominators of a fraction in words: "three fourths", "one half", "two thirds".
_DENOMINATORS = {**{w: n for w, n in _ORDINALS.items() if n >= 3},
                 **{w + "s": n for w, n in _ORDINALS.items() if n >= 3},
                 "half": 2, "halves": 2, "quarter": 4, "quarters": 4}
_WORD_SPLIT = re.compile(r"[\s-]+")
_WORDS_ONLY = re.compile(r"[a-z][a-z\s-]*")
# "1.5 times 10 to the minus 3", "2.5 times ten to the sixth power", "4 x 10 to the power of -2"
_SCI_WORDS = re.compile(
    r"(?P<m>\d+(?:\.\d+)?|\.\d+)\s*(?:times|x|\*|\\times|\\cdot)\s*(?:10|ten)\s+to\s+the\s+"
    r"(?:power\s+of\s+)?(?P<neg>minus\s+|negative\s+|-\s*)?(?P<e>\d+|[a-z]+)"
    r"(?:st|nd|rd|th)?(?:\s+power)?")


def _integer_words(tokens: list[str]) -> int | None:
    """The integer that English number words spell ("one hundred twenty-three"), or None
    when the words are not exactly a number ("five six", "hundred")."""
    total = current = 0
    last = ""  # the kind of the previous word: unit, teen, tens, hundred, scale
    for token in tokens:
        if token == "and" and last in ("hundred", "scale"):
            continue
        if token in _CARDINALS:
            value = _CARDINALS[token]
            kind = "teen" if value >= 10 else "unit"
            if last in ("unit", "teen") or (last == "tens" and kind == "teen"):
                return None
            current += value
        elif token in _TENS_WORDS:
            kind = "tens"
            if last in ("unit", "teen", "tens"):
                return None
            current += _TENS_WORDS[token]
        elif token == "hundred":
            kind = "hundred"
            if last not in ("unit", "teen", "tens") or current >= 100:
                return None
            current *= 100
        elif token in _SCALES:
            kind = "scale"
            if last not in ("unit", "teen", "tens", "hundred"):
                return None
            total += current * _SCALES[token]
            current = 0
        else:
            return None
        last = kind
    return total + current if last else None


def _exponent_word(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _CARDINALS.get(word, _ORDINALS.get(word))


def number_from_words(text: str) -> Fraction | None:
    """The value of a number written in words, or ``None``.

    Reads English cardinals ("twelve", "forty-five", "one hundred and five"), an optional
    sign word ("negative", "minus"), simple fractions ("one half", "three fourths", "two
    thirds") and scientific notation in words ("1.5 times 10 to the minus 3", "2.5 times
    ten to the sixth power"). Anything else, including a number word inside a sentence,
    gives ``None``.

    Example:
        >>> number_from_words("forty-five"), number_from_words("three fourths")
        (Fraction(45, 1), Fraction(3, 4))
        >>> number_from_words("1.5 times 10 to the minus 3")
        Fraction(3, 2000)
    """
    t = text.strip().lower().rstrip(".")
    if not t or len(t) > 120:
        return None
    sci = _SCI_WORDS.fullmatch(t)
    if sci is not None:
        exponent = _exponent_word(sci.group("e"))
        if exponent is None or exponent > 400:
            return None
        sign = -1 if sci.group("neg") else 1
        return Fraction(sci.group("m")) * Fraction(10) ** (sign * exponent)
    if not _WORDS_ONLY.fullmatch(t):
        return None
    tokens = [w for w in _WORD_SPLIT.split(t) if w]
    negative = bool(tokens) and tokens[0] in ("negative", "minus")
    tokens = tokens[1:] if negative else tokens
    if len(tokens) > 12 or not tokens:
        return None
    value: Fraction | None = None
    if len(tokens) >= 2 and tokens[-1] in _DENOMINATORS:
        count = 1 if tokens[:-1] == ["a"] else _integer_words(tokens[:-1])
        plural = tokens[-1].endswith("s")  # "one half", "two halves", "three fourths"
        if count is not None and count > 0 and (count == 1) != plural:
            value = Fraction(count, _DENOMINATORS[tokens[-1]])
    else:
        integer = _integer_words(tokens)
        value = Fraction(integer) if integer is not None else None
    if value is None:
        return None
    return -value if negative else value


# -- the arithmetic reader ------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)|(\\[a-zA-Z]+)|([a-zA-Z])|([-+*/^!(){}\[\]_|]))")
_GREEK = frozenset((
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon",
    "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Sigma",
    "Phi", "Psi", "Omega"))
_FUNCS: dict[str, Callable[[complex], complex]] = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "arcsin": cmath.asin,
    "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh,
    "tanh": cmath.tanh, "exp": cmath.exp, "ln": cmath.log, "log": cmath.log,
    "cot": lambda z: 1 / cmath.tan(z), "sec": lambda z: 1 / cmath.cos(z),
    "csc": lambda z: 1 / cmath.sin(z),
}
_TIMES = frozenset({"*", "\\cdot", "\\times"})
_DIVIDE = frozenset({"/", "\\div"})
_ATOM_COMMANDS = frozenset({"\\frac", "\\sqrt", "\\binom", "\\dbinom", "\\tbinom", "\\pi"})

Node = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Parsed:
    tree: Node
    names: frozenset[str]
    has_decimal: bool


class _Reader:
    """Recursive descent over LaTeX tokens; builds a tuple tree, evaluates nothing."""

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise _Unsupported(text[pos : pos + 10])
            self.tokens.append(m.group(m.lastindex or 0))
            pos = m.end()
        self.pos = 0
        self.depth = 0
        self.names: set[str] = set()
        self.has_decimal = False

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Unsupported(f"expected {expected!r}, found {token!r}")
        self.pos += 1
        return token

    def parse(self) -> Node:
        tree = self.expr()
        if self.peek() is not None:
            raise _Unsupported(f"unexpected {self.peek()!r}")
        return tree

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > 60:
            raise TooLarge("expression nested too deeply")
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = ("add", node, self.term() if op == "+" else ("neg", self.term()))
        self.depth -= 1
        return node

    def starts_atom(self, token: str | None) -> bool:
        if token is None:
            return False
        if token in ("(", "{") or token[0].isdigit() or token[0] == "." or token.isalpha():
            return True
        return token in _ATOM_COMMANDS or token[1:] in _GREEK or token[1:] in _FUNCS

    def term(self) -> Node:
        node = self.unary()
        while True:
            token = self.peek()
            if token in _TIMES:
                self.take()
                node = ("mul", node, self.unary())
            elif token in _DIVIDE:
                self.take()
                node = ("div", node, self.unary())
            elif self.starts_atom(token):
                node = ("mul", node, self.power())
            else:
                return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Node:
        base = self.postfix(self.atom())
        if self.peek() == "^":
            self.take()
            return self.postfix(("pow", base, self.script()))
        return base

    def postfix(self, node: Node) -> Node:
        while self.peek() == "!":
            self.take()
            node = ("fact", node)
        return node

    def script(self) -> Node:
        """One TeX argument: a braced group or a single character (``x^23`` is x^2 * 3)."""
        token = self.peek()
        if token == "{":
            self.take()
            node = self.expr()
            self.take("}")
            return node
        if token is not None and token[0].isdigit() and len(token) > 1:
            self.tokens[self.pos] = token[1:]
            return self.number(token[0])
        if token == "-":
            self.take()
            return ("neg", self.script())
        return self.atom()

    def number(self, token: str) -> Node:
        if "." in token:
            self.has_decimal = True
        return ("num", _fraction(token))

    def atom(self) -> Node:
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            return self.number(token)
        if token in ("(", "{", "["):
            node = self.expr()
            self.take({"(": ")", "{": "}", "[": "]"}[token])
            return node
        if token == "|":
            node = self.expr()
            self.take("|")
            return ("abs", node)
        if token.isalpha():
            return self.variable(token)
        name = token[1:]
        if name in _GREEK:
            return self.variable(name)
        if name == "pi":
            return ("pi",)
        if name == "frac":
            return ("div", self.script(), self.script())
        if name in ("binom", "dbinom", "tbinom"):
            return ("binom", self.script(), self.script())
        if name == "sqrt":
            degree: Node = ("num", Fraction(2))
            if self.peek() == "[":
                self.take()
                degree = self.expr()
                self.take("]")
            return ("root", self.script(), degree)
        if name in _FUNCS:
            return self.function(name)
        raise _Unsupported(token)

    def variable(self, name: str) -> Node:
        if self.peek() == "_":
            self.take()
            start = self.pos
            self.script()
            name += "_" + "".join(self.tokens[start : self.pos])
        if name == "e":
            return ("e",)
        if name == "i":
            return ("i",)
        self.names.add(name)
        return ("var", name)

    def function(self, name: str) -> Node:
        exponent: Node | None = None
        base: Node | None = None
        for _ in range(2):
            if self.peek() == "^":
                self.take()
                exponent = self.script()
            elif self.peek() == "_":
                self.take()
                base = self.script()
        if self.peek() in ("(", "{"):
            argument = self.atom()
        else:
            argument = self.power()
            while self.starts_atom(self.peek()) and (self.peek() or "")[1:] not in _FUNCS:
                argument = ("mul", argument, self.power())
        node: Node = ("fn", name, argument, base)
        return ("pow", node, exponent) if exponent is not None else node


@lru_cache(maxsize=4096)
def _parse(text: str) -> _Parsed | None:
    if len(text) > MAX_EXPRESSION or not text.strip():
        return None
    try:
        reader = _Reader(text)
        tree = reader.parse()
    except (_Unsupported, ValueError, ZeroDivisionError):
        return None
    return _Parsed(tree, frozenset(reader.names), reader.has_decimal)


# -- evaluation -----------------------------------------------------------------------------

def _finite(value: complex) -> complex:
    if not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise TooLarge("a value overflows floating point")
    return value


def _exact_root(value: Fraction, n: int) -> Fraction | None:
    def iroot(k: int) -> int | None:
        """The exact integer n-th root of k >= 0, or None (Newton's method on integers:
        a float guess misses perfect powers beyond about 2**106)."""
        if k.bit_length() >= 1000:
            return None
        if k < 2:
            return k if k >= 0 else None  # callers pass |base|; a sign is not a root
        x = 1 << -(-k.bit_length() // n)  # at least the root
        while (y := ((n - 1) * x + k // x ** (n - 1)) // n) < x:
            x = y
        return x if x**n == k else None

    num, den = iroot(value.numerator), iroot(value.denominator)
    return Fraction(num, den) if num is not None and den is not None else None


def _power(base: Value, exponent: Value) -> Value:
    if isinstance(exponent, Fraction) and isinstance(base, Fraction):
        if exponent.denominator == 1:
            e = exponent.numerator
            size = max(base.numerator.bit_length(), base.denominator.bit_length(), 1)
            if base in (0, 1, -1) or abs(e) * size <= _MAX_BITS:
                if base == 0 and e < 0:
                    raise ZeroDivisionError("0 to a negative power")
                return base**e
            raise TooLarge(f"a power with {abs(e) * size} bits")
        n = exponent.denominator
        if n <= 64 and base != 0:
            root = _exact_root(abs(base), n)
            if base > 0 and root is not None:
                return _power(root, Fraction(exponent.numerator))
            if base < 0 and n % 2 == 1:  # odd roots of negatives are real: \sqrt[3]{-8} = -2
                real = -root if root is not None else complex(-(float(-base) ** (1.0 / n)))
                return _power(real, Fraction(exponent.numerator))
    try:
        return _finite(complex(base) ** complex(exponent))
    except OverflowError:
        raise TooLarge("a power overflows floating point") from None


def _evaluate(node: Node, env: dict[str, Fraction]) -> Value:
    kind = node[0]
    if kind == "num":
        value: Fraction = node[1]
        return value
    if kind == "var":
        return env[node[1]]
    if kind in ("add", "mul", "div"):
        a, b = _evaluate(node[1], env), _evaluate(node[2], env)
        if kind == "div" and b == 0:
            raise ZeroDivisionError("division by zero")
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            result = a + b if kind == "add" else a * b if kind == "mul" else a / b
            if max(result.numerator.bit_length(), result.denominator.bit_length()) > _MAX_BITS:
                raise TooLarge("an exact value over the size cap")
            return result
        ca, cb = complex(a), complex(b)
        return _finite(ca + cb if kind == "add" else ca * cb if kind == "mul" else ca / cb)
    if kind == "neg":
        return -_evaluate(node[1], env)
    if kind == "pow":
        return _power(_evaluate(node[1], env), _evaluate(node[2], env))
    if kind == "root":
        degree = _evaluate(node[2], env)
        if degree == 0:
            raise ZeroDivisionError("zeroth root")
        inverse = 1 / degree if isinstance(degree, Fraction) else 1 / complex(degree)
        return _power(_evaluate(node[1], env), inverse)
    if kind == "pi":
        return complex(math.pi)
    if kind == "e":
        return complex(math.e)
    if kind == "i":
        return 1j
    if kind == "abs":
        inner = _evaluate(node[1], env)
        return abs(inner) if isinstance(inner, Fraction) else complex(abs(inner))
    if kind in ("fact", "binom"):
        args = [_evaluate(n, env) for n in node[1:]]
        if not all(isinstance(a, Fraction) and a.denominator == 1 and a >= 0 for a in args):
            raise _Unsupported("factorial or binomial of a non-natural number")
        ints = [int(a.numerator) for a in args if isinstance(a, Fraction)]
        if max(ints) > 5000:
            raise TooLarge(f"a factorial or binomial of {max(ints)}")
        return Fraction(math.factorial(ints[0]) if kind == "fact" else math.comb(*ints))
    if kind == "fn":
        function: Callable[[complex], complex] = _FUNCS[node[1]]
        image = function(complex(_evaluate(node[2], env)))
        if node[3] is not None:  # \log_b x
            image = image / cmath.log(complex(_evaluate(node[3], env)))
        return _finite(image)
    raise _Unsupported(kind)


# Sample points: distinct rationals per variable, so polynomial identities are tested
# exactly and distinct variables never share a value.
_POINTS = tuple(tuple(Fraction(p, q) for p, q in row) for row in (
    ((13, 7), (29, 11), (41, 17), (53, 19), (67, 23), (79, 29), (89, 31), (97, 37)),
    ((5, 3), (17, 13), (31, 7), (43, 11), (59, 17), (71, 13), (83, 19), (101, 23)),
    ((11, 5), (23, 9), (37, 13), (47, 7), (61, 11), (73, 17), (19, 37), (103, 41)),
))


def _close(gold: Value, answer: Value, gold_dec: bool, answer_dec: bool) -> bool | None:
    if isinstance(gold, Fraction) and isinstance(answer, Fraction):
        return gold == answer
    g, a = complex(gold), complex(answer)
    close = abs(g - a) <= _TOLERANCE * max(abs(g), abs(a)) + 1e-12
    if close and ((isinstance(gold, Fraction) and gold_dec)
                  or (isinstance(answer, Fraction) and answer_dec)):
        return None  # a decimal within rounding of an irrational value: sympy decides
    return close


def compare_expressions(gold: str, answer: str, *, proportional: bool = False
                        ) -> tuple[bool, str] | None:
    """Compare two LaTeX expressions by evaluation at sample points.

    Args:
        gold: the gold expression.
        answer: the answer expression.
        proportional: compare up to a non-zero constant factor (for ``lhs - rhs`` of two
            equations).

    Returns:
        ``(equal, reason)``, or ``None`` when either side is outside the evaluator's subset
        or the evaluation cannot decide (a decimal against an irrational value).

    Raises:
        TooLarge: a value passes the size caps.
    """
    g, a = _parse(gold), _parse(answer)
    if g is None or a is None:
        return None
    names = sorted(g.names | a.names)
    if len(names) > len(_POINTS[0]):
        return None
    rounds = _POINTS if names else _POINTS[:1]
    exact = True
    ratios: list[Value] = []
    decided = 0
    for row in rounds:
        env = dict(zip(names, row, strict=False))
        try:
            gv, av = _evaluate(g.tree, env), _evaluate(a.tree, env)
        except (ZeroDivisionError, ValueError, OverflowError, _Unsupported) as exc:
            if isinstance(exc, TooLarge):
                raise
            if isinstance(exc, _Unsupported):
                return None
            continue
        exact = exact and isinstance(gv, Fraction) and isinstance(av, Fraction)
        if proportional:
            if gv == 0 or av == 0:
                if gv != av:
                    return False, "equations differ"
                continue
            ratios.append(gv / av if isinstance(gv, Fraction) and isinstance(av, Fraction)
                          else complex(gv) / complex(av))
            decided += 1
            continue
        same = _close(gv, av, g.has_decimal, a.has_decimal)
        if same is None:
            return None
        if not same:
            return False, "values differ" if not names else "expressions differ"
        decided += 1
    if decided == 0 or (names and decided < 2):
        return None
    if proportional:
        if any(not _close(ratios[0], r, False, False) for r in ratios[1:]):
            return False, "equations differ"
        return True, "equations match (proportional)"
    how = "exact" if exact else "numeric"
    if names:
        return True, f"expression match ({how} at sample points)"
    return True, "exact value match" if exact else "numeric match"


def linear_form(text: str) -> tuple[str, Fraction, Fraction] | None:
    """``text`` as ``slope * var + intercept`` with rational coefficients, or ``None``.

    Example:
        >>> linear_form("2x - 5")
        ('x', Fraction(2, 1), Fraction(-5, 1))
    """
    parsed = _parse(text)
    if parsed is None or len(parsed.names) != 1:
        return None
    (name,) = parsed.names
    try:
        values = [_evaluate(parsed.tree, {name: Fraction(x)}) for x in (0, 1, 2, Fraction(13, 7))]
    except (ZeroDivisionError, ValueError, OverflowError, _Unsupported):
        return None
    if not all(isinstance(v, Fraction) for v in values):
        return None
    f0, f1, f2, f3 = (v for v in values if isinstance(v, Fraction))
    slope = f1 - f0
    if slope == 0 or f2 - f1 != slope or f3 != f0 + slope * Fraction(13, 7):
        return None
    return name, slope, f0


def constant_value(text: str) -> float | None:
    """The real value of a constant expression ("\\\\sqrt{3}", "\\\\frac{9}{2}"), or ``None``
    (a variable, a non-real value, outside the evaluator's subset)."""
    parsed = _parse(text)
    if parsed is None or parsed.names:
        return None
    try:
        value = complex(_evaluate(parsed.tree, {}))
    except (ZeroDivisionError, ValueError, OverflowError, _Unsupported):
        return None
    return value.real if abs(value.imag) <= 1e-12 * max(1.0, abs(value.real)) else None


# -- sympy ----------------------------------------------------------------------------------

_SYMPY_MAX = 400
_HUGE_FACTORIAL = re.compile(r"\d{4,}\s*!|\}\s*!")


@lru_cache(maxsize=4096)
def _sympy_parse(text: str) -> Any:
    from latex2sympy2_extended import (  # type: ignore[import-untyped]
        NormalizationConfig,
        latex2sympy,
    )

    config = NormalizationConfig(basic_latex=True, units=False, malformed_operators=True,
                                 nits=False, boxed="none", equations=False)
    return latex2sympy(text, normalization_config=config)


def sympy_compare(gold: str, answer: str) -> tuple[bool, str]:
    """Compare with sympy: structural equality, a 30-digit numeric check, ``simplify``.

    Inputs over the caps (length 400, six ``^``, factorials of big numbers) are refused with
    a reason rather than handed to sympy, whose evaluation of such input may not end.

    Returns:
        ``(equal, reason)``: reasons "sympy structural", "sympy numeric", "sympy simplify",
        "sympy: not equal", "no parse", or the cap that refused the input.
    """
    for text in (gold, answer):
        if text.count("{") != text.count("}"):
            return False, "no parse"
        if len(text) > _SYMPY_MAX or text.count("^") > 6 or _HUGE_FACTORIAL.search(text):
            return False, "too large for sympy"
    import sympy  # type: ignore[import-untyped]

    try:
        g, a = _sympy_parse(gold), _sympy_parse(answer)
    except Exception:  # noqa: BLE001 - the parser raises many types on bad LaTeX
        return False, "no parse"
    try:
        if g == a:
            return True, "sympy structural"
        matrices = (sympy.MatrixBase, sympy.MatrixExpr)
        if isinstance(g, matrices) or isinstance(a, matrices):
            if not (isinstance(g, matrices) and isinstance(a, matrices)):
                return False, "sympy: a matrix against a non-matrix"
            gm, am = sympy.Matrix(g.doit()), sympy.Matrix(a.doit())
            if gm.shape != am.shape:
                return False, "sympy: matrix shapes differ"
            same = all(sympy.simplify(x) == 0 for x in gm - am)
            return (True, "sympy matrix match") if same else (False, "sympy: matrices differ")
        if not (isinstance(g, sympy.Expr) and isinstance(a, sympy.Expr)):
            return False, "sympy: not equal"
        diff = g - a
        if not diff.free_symbols:
            value = complex(diff.evalf(30))
            scale = max(1.0, abs(complex(g.evalf(30))))
            if abs(value) <= 1e-20 * scale:
                return True, "sympy numeric"
            return False, "sympy: not equal"
        if sympy.simplify(diff) == 0:
            return True, "sympy simplify"
        return False, "sympy: not equal"
    except Exception as exc:  # noqa: BLE001 - sympy raises many types on odd input
        return False, f"sympy error ({type(exc).__name__})"
