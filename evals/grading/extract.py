"""Final-answer extraction shared by every grader (no plugin re-parses ``\\boxed{}``).

Model output is untrusted: every function here is linear in the input and never evaluates
it.
"""

from __future__ import annotations

import re

__all__ = ["final_answer_phrase", "last_boxed", "last_integer", "strip_latex_wrappers"]

_BOX_OPENERS = ("\\boxed", "\\fbox")
_PHRASE = re.compile(
    r"(?:final\s+answer|the\s+answer)\s*(?:is|:|=)?\s*:?\s*(?:\*\*)?\s*(.+)",
    re.IGNORECASE,
)


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces included.

    A brace-less ``\\boxed 5`` gives ``"5"``. An unbalanced last box gives ``None``.

    Example:
        >>> last_boxed(r"so \\boxed{\\frac{1}{2}} and \\boxed{33}")
        '33'
    """
    start = max(text.rfind(opener) for opener in _BOX_OPENERS)
    while start >= 0:
        opener = next(o for o in _BOX_OPENERS if text.startswith(o, start))
        i = start + len(opener)
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                ch = text[j]
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j].strip()
        elif i < len(text) and text[i] == " ":
            match = re.match(r"\s+([^\s$]+)", text[i:])
            if match:
                return match.group(1).rstrip(".,;")
        # unbalanced or empty box: try an earlier one
        start = max(text.rfind(opener, 0, start) for opener in _BOX_OPENERS)
    return None


def final_answer_phrase(text: str) -> str | None:
    """What follows the last "final answer is" / "the answer is" / "Final Answer:" phrase,
    up to the end of its line."""
    found: str | None = None
    for match in _PHRASE.finditer(text):
        found = match.group(1)
    if found is None:
        return None
    line = found.strip().splitlines()[0] if found.strip() else ""
    # "Final Answer: The final answer is 5." -- the phrase can nest; take the innermost.
    while (inner := _PHRASE.search(line)) is not None and inner.group(1) != line:
        line = inner.group(1).strip()
    line = re.sub(r"\s*I hope it is correct\.?\s*$", "", line, flags=re.IGNORECASE)
    return line.strip().rstrip(".").strip() or None


def strip_latex_wrappers(answer: str) -> str:
    """Remove ``$``, ``**``, ``\\text{}``, ``\\(`` ``\\)`` and trailing punctuation."""
    out = answer.strip()
    out = re.sub(r"\\text\{([^{}]*)\}", r"\1", out)
    out = out.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    out = out.replace("$", "").replace("**", "")
    return out.strip().rstrip(".,;:").strip()


_INT = re.compile(r"(?<![\w.])-?\d[\d,]*(?![\w.]\d)")


def last_integer(text: str) -> str | None:
    """The last integer written in the text (thousands separators allowed), or ``None``."""
    found: str | None = None
    for match in _INT.finditer(text[-4000:]):
        found = match.group(0)
    return found.replace(",", "") if found is not None else None
