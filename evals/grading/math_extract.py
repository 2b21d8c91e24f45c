"""Final-answer extraction shared by every grader (no plugin re-parses ``\\boxed{}``).

Model output is untrusted: every function here is linear in the input, never evaluates it
and never raises on odd text. Extraction only finds and unwraps the answer; the
gold-dependent clean-up (degrees, percentages, units) belongs to the comparison
(``evals.grading.math_compare``), because only the gold can say whether ``^\\circ`` or ``cm`` is
meant.
"""

from __future__ import annotations

import re

__all__ = [
    "boxed_contents",
    "clean_answer",
    "extract_math_answer",
    "final_answer_phrase",
    "last_boxed",
    "last_integer",
    "strip_latex_wrappers",
]

_BOX_OPENER = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_PHRASE = re.compile(
    r"(?:final\s+answer|the\s+answer)\s*(?:is|:|=)?\s*:?\s*(?:\*\*)?\s*(.+)",
    re.IGNORECASE,
)
_MAX_TEXT = 200_000
_PLAIN_BOX = re.compile(r"[^\s$]+")


_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
_MAX_BOXES = 64  # the last ones: an answer is at the end, and each box keeps a slice


def _brace_pairs(text: str, start: int = 0) -> dict[int, int]:
    """Map the index of every balanced ``{`` from ``start`` on to its ``}`` (``\\{``
    ignored), in one pass that jumps from brace to brace in C: linear in the text however
    the braces nest."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKEN.finditer(text, start):
        char = token.group()
        if char == "{":
            stack.append(token.start())
        elif char == "}" and stack:
            pairs[stack.pop()] = token.start()
    return pairs


def boxed_contents(text: str) -> list[tuple[int, int, str]]:
    """Every balanced ``\\boxed{...}`` / ``\\fbox{...}`` (and brace-less ``\\boxed 5``),
    of the last 64 openers.

    Returns:
        ``(start, end, content)`` per box, in order; ``start``/``end`` delimit the whole box
        in ``text``. Unbalanced and empty boxes are skipped.

    Example:
        >>> [c for _, _, c in boxed_contents(r"\\boxed{\\frac{1}{2}} or \\boxed 3.")]
        ['\\\\frac{1}{2}', '3']
    """
    openers = list(_BOX_OPENER.finditer(text))[-_MAX_BOXES:]
    if not openers:
        return []
    pairs = _brace_pairs(text, openers[0].start())
    found: list[tuple[int, int, str]] = []
    for match in openers:
        i = match.end()
        while i < len(text) and text[i] == " " and i - match.end() < 3:
            i += 1
        if i < len(text) and text[i] == "{":
            close = pairs.get(i)
            if close is not None and (content := text[i + 1 : close].strip()):
                found.append((match.start(), close + 1, content))
        elif i > match.end():
            plain = _PLAIN_BOX.match(text, i, i + 200)
            if plain:
                value = plain.group(0).rstrip(".,;")
                if value:
                    found.append((match.start(), plain.end(), value))
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces included.

    A brace-less ``\\boxed 5`` gives ``"5"``. An unbalanced last box is skipped in favour of
    an earlier one; no box gives ``None``.

    Example:
        >>> last_boxed(r"so \\boxed{\\frac{1}{2}} and \\boxed{33}")
        '33'
    """
    found = boxed_contents(text)
    return found[-1][2] if found else None


def final_answer_phrase(text: str) -> str | None:
    """What follows the last "final answer is" / "the answer is" / "Final Answer:" phrase,
    up to the end of its line."""
    match = _last(_PHRASE, text)
    return _phrase_line(match.group(1), _is_heading(match)) if match is not None else None


def _is_heading(match: re.Match[str]) -> bool:
    """Whether a phrase match is a heading ("**Final Answer**" alone on its line), so that
    what it captured is the next line."""
    return "\n" in match.string[match.start() : match.start(1)]


# "The number of such integers $n$ is $540$." under a "**Final Answer**" heading (the
# Markdown summary Magistral 1.0's system prompt asks for, without \boxed{}): the value
# follows the sentence's last "is".
_CONCLUSION = re.compile(r"\s(?:is|are|equals)\s+(?=\S)", re.IGNORECASE)
_PROSE_START = re.compile(r"^[*_]*[A-Za-z]+[a-z]\s+[A-Za-z]")


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The last non-overlapping match of ``pattern`` in ``text``."""
    found = None
    for found in pattern.finditer(text):  # the loop keeps the last
        pass
    return found


def _phrase_line(found: str, heading: bool = False) -> str | None:
    """What a phrase's match captured, cut to its line, innermost phrase, no hope.

    Under a heading, a prose sentence ("The number of ways is $73$.") gives what follows
    its last "is"/"are"/"equals"."""
    line = found.strip().splitlines()[0] if found.strip() else ""
    # "Final Answer: The final answer is 5." -- the phrase can nest; take the innermost.
    while (inner := _PHRASE.search(line)) is not None and inner.group(1) != line:
        line = inner.group(1).strip()
        heading = False
    if heading and _PROSE_START.match(line):
        conclusion = _last(_CONCLUSION, line)
        if conclusion is not None:
            line = line[conclusion.end() :]
    line = _HOPE.sub("", line)
    return line.strip().rstrip(".").strip() or None


_TEXT_WRAPPER = re.compile(r"\\text\{([^{}]*)\}")


def strip_latex_wrappers(answer: str) -> str:
    """Remove ``$``, ``**``, ``\\text{}``, ``\\(`` ``\\)`` and trailing punctuation."""
    out = _TEXT_WRAPPER.sub(r"\1", answer.strip())
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


# -- math answers from long reasoning-model responses ------------------------------------------

_MATH_SPAN = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\[(.+?)\\\]"
                        r"|\\\((.+?)\\\)", re.DOTALL)
_ANSWER_LINE = re.compile(r"^[ \t>*#_]*(?:final\s+)?answer\s*[:：]\**[ \t]*(.+)$",
                          re.IGNORECASE | re.MULTILINE)
_BOLD_ANSWER = re.compile(r"\*\*\s*(?:final\s+)?answer\s*[:：]?\s*([^*\n]+?)\s*\*\*",
                          re.IGNORECASE)
_BOLD_END = re.compile(r"\*\*([^*\n]{1,200})\*\*[\s.!]*$")
# Boxes in one final group: "\boxed{2} and \boxed{3}", "x=\boxed{1}, y=\boxed{2}".
_BOX_JOINER = re.compile(r"^[\s,;.$]*(?:and|or|,)?[\s$]*(?:[a-zA-Z]\w{0,3}\s*=\s*)?[\s$]*$")
_SENTENCE_END = re.compile(r"\.(?:\s|$)(?!\d)")
_HOPE = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_SHORT_RESPONSE = 120
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_LATEX_BOLD = re.compile(r"\\(?:mathbf|textbf|boldsymbol)\{\s*(-?\d[\d,]*(?:\.\d+)?)\s*\}")
_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")  # prose words, not \commands


def clean_answer(answer: str) -> str:
    """Unwrap an extracted answer: math delimiters, ``\\displaystyle``, bold (``**`` and a
    ``\\mathbf{}``/``\\textbf{}`` around a plain number), a leading
    ``\\boxed``, trailing punctuation. Gold-independent; linear time.

    Example:
        >>> clean_answer(r"$\\displaystyle \\frac{1}{2}$.")
        '\\\\frac{1}{2}'
    """
    out = answer.strip()
    for _ in range(3):  # a few nested layers at most: "**$\boxed{5}$**."
        before = out
        out = out.strip().rstrip(".,;:").strip().strip("*").strip()
        if out.startswith("$$") and out.endswith("$$") and len(out) > 4:
            out = out[2:-2].strip()
        elif out.startswith("$") and out.endswith("$") and len(out) > 2:
            out = out[1:-1].strip()
        elif out[:2] in ("\\[", "\\(") and out[-2:] in ("\\]", "\\)") and len(out) > 4:
            out = out[2:-2].strip()
        boxes = boxed_contents(out)
        if len(boxes) == 1 and boxes[0][0] == 0 and boxes[0][1] == len(out):
            out = boxes[0][2]
        bold = _LATEX_BOLD.fullmatch(out)
        if bold is not None:  # "$\mathbf{23}$": LaTeX bold used like Markdown's **23**
            out = bold.group(1)
        if out == before:
            break
    out = re.sub(r"\\displaystyle\s*", "", out)
    if len(_UNESCAPED_DOLLAR.findall(out)) == 1:
        out = _UNESCAPED_DOLLAR.sub("", out)
    return out.strip()


def _final_box_group(text: str) -> str | None:
    boxes = boxed_contents(text)
    if not boxes:
        return None
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[1] : group[0][0]]
        if len(gap) > 40 or not _BOX_JOINER.match(gap):
            break
        group.insert(0, box)
    if len(group) > 1 and len({c for _, _, c in group}) > 1:
        return ", ".join(c for _, _, c in group)
    return group[-1][2]


def _phrase_value(line: str) -> str:
    """The answer in what follows "the answer is": its first math span, else the sentence."""
    line = _HOPE.sub("", line.strip()[:2000])
    nested = final_answer_phrase(line)  # "Final Answer: The final answer is $5$."
    if nested is not None and nested != line:
        line = nested
    span = _MATH_SPAN.search(line)
    if span is not None and span.start() <= 3:
        return next(g for g in span.groups() if g is not None)
    end = _SENTENCE_END.search(line)
    if end is not None:
        line = line[: end.start()]
    return line


def extract_math_answer(text: str) -> tuple[str | None, str]:
    """The final answer of a math response, and how it was found.

    Order: the last ``\\boxed{}``/``\\fbox{}`` (several boxes ending the response and joined
    only by "and"/commas are read as one list); otherwise the last of: a "Final Answer: The
    final answer is X. I hope it is correct." / "the answer is X" phrase, an ``Answer: X``
    line, a bold ``**Answer: X**``; otherwise a bold ``**X**`` ending the response; otherwise
    the whole response when it is one short line; otherwise the last math span
    (``$...$``, ``\\[...\\]``) of the last paragraph; otherwise what the last sentence
    concludes with, after its last "is"/"are"/"equals"/"=" ("So the probability is 3/8.",
    "The meeting is on Tuesday."), when that is at most five words. Text after a closing ``</think>`` is
    used when there is any.

    Args:
        text: the model's response (any length; only the last 200,000 characters are read).

    Returns:
        ``(answer, how)`` with how one of "boxed", "phrase", "answer line", "bold",
        "whole response", "last math", "sentence", or ``(None, "none")``. The answer is unwrapped
        (``$``, ``\\displaystyle``, trailing punctuation) but otherwise as written.

    Example:
        >>> extract_math_answer("... Final Answer: The final answer is $\\\\frac{3}{4}$. "
        ...                     "I hope it is correct.")
        ('\\\\frac{3}{4}', 'phrase')
    """
    text = text[-_MAX_TEXT:]
    if "</think>" in text:
        after = text.rsplit("</think>", 1)[1]
        if after.strip():
            text = after
    boxed = _final_box_group(text)
    if boxed is not None:
        answer = clean_answer(boxed)
        if answer:
            return answer, "boxed"

    candidates: list[tuple[int, int, str, str]] = []
    phrase_match = _last(_PHRASE, text)
    if phrase_match is not None:
        value = _phrase_line(phrase_match.group(1), _is_heading(phrase_match))
        if value is not None:
            candidates.append((phrase_match.start(), 2, _phrase_value(value), "phrase"))
    line_match = _last(_ANSWER_LINE, text)
    if line_match is not None:
        candidates.append((line_match.start(), 1, _phrase_value(line_match.group(1)),
                           "answer line"))
    bold_match = _last(_BOLD_ANSWER, text)
    if bold_match is not None:
        candidates.append((bold_match.start(), 3, bold_match.group(1), "bold"))
    for _, _, value, how in sorted(candidates, reverse=True):
        answer = clean_answer(value)
        if answer:
            return answer, how

    stripped = text.strip()
    bold_end = _BOLD_END.search(stripped[-400:])
    if bold_end is not None and (answer := clean_answer(bold_end.group(1))):
        return answer, "bold"
    if (stripped and len(stripped) <= _SHORT_RESPONSE and "\n" not in stripped
            and len(_WORD.findall(stripped)) <= 2
            and (_MATH_SPAN.search(stripped) is None or _MATH_SPAN.fullmatch(stripped))):
        answer = clean_answer(stripped)
        if answer:
            return answer, "whole response"
    last_paragraph = re.split(r"\n\s*\n", stripped[-4000:])[-1]
    span = _last(_MATH_SPAN, last_paragraph)
    if span is not None:
        answer = clean_answer(next(g for g in span.groups() if g is not None))
        if answer:
            return answer, "last math"
    concluded = _sentence_conclusion(last_paragraph)
    if concluded is not None and (answer := clean_answer(concluded)):
        return answer, "sentence"
    return None, "none"


# "So the probability is 3/8.", "The meeting is on Tuesday.", "... 5! = 120.": the value a
# final sentence concludes with, after its last "is"/"are"/"equals"/"=".
_STATES = re.compile(r"\s(?:is|are|was|were|equals|=)\s+(?=\S)", re.IGNORECASE)
_CLAUSE_END = re.compile(r",\s+(?=[a-z])|;|\s(?:because|since|as|which|so|but)\s", re.IGNORECASE)
_MAX_CONCLUSION_WORDS = 5


def _sentence_conclusion(paragraph: str) -> str | None:
    """What the last sentence of ``paragraph`` states after its last "is"/"equals"/"=",
    cut at the end of its clause; ``None`` when that is not a short value (at most five
    words) or the sentence states nothing."""
    sentences = [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
    if not sentences:
        return None
    sentence = _HOPE.sub("", sentences[-1])
    verb = _last(_STATES, sentence[-600:])
    if verb is None:
        return None
    value = _CLAUSE_END.split(sentence[-600:][verb.end() :], maxsplit=1)[0]
    value = value.strip().rstrip(".!").strip()
    if not value or len(value.split()) > _MAX_CONCLUSION_WORDS or "?" in value:
        return None
    return value
