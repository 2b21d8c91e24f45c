"""Multiple-choice grading: which letter a long reasoning-model answer settles on.

Three layers, as for every grader here: ``extract_choice`` finds the letter the answer
states (or the text of one option), ``choice_grader`` compares it with the gold letter, and
the metrics aggregate the grades. ``shuffle_choices`` draws the per-attempt order of the
choices from a recorded seed.

The extraction rule is "the last stated answer wins": a model that writes "Answer: A",
then reconsiders and ends with "Answer: C", answered C. This differs from simple-evals,
which takes the *first* ``Answer: X`` match (openai/simple-evals:common.py,
``ANSWER_PATTERN_MULTICHOICE`` with ``re.search``); on long traces that quote option letters
the two rules can disagree.

Model output is untrusted: only the last ``MAX_TAIL`` characters are read, every pattern is
applied once with bounded look-ahead, and nothing is evaluated.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from evals.records import Grade, Sample
from evals.registry import Grader

__all__ = [
    "ALPHABET",
    "MAX_TAIL",
    "Choice",
    "ChoiceHow",
    "choice_grader",
    "extract_choice",
    "shuffle_choices",
]

#: Option labels in order; a question with ``n`` choices uses the first ``n``.
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: How many characters from the end of an answer are read. Final answers sit at the end;
#: this bounds the work on a runaway response.
MAX_TAIL = 16_384

#: Where the letter was found:
#:
#: - ``answer``: after "Answer:", "the answer is", "Final answer:", "the correct option
#:   is", "the right one is", ... (also an "Answer" heading with the letter on the next
#:   line);
#: - ``answer text``: the same phrases followed by the text of exactly one option;
#: - ``boxed`` / ``boxed text``: ``\\boxed{C}``, ``\\boxed{\\text{(C)}}``, or a box holding
#:   the text of one option;
#:   Also an answer label in another language ("Respuesta: C", "答案：C", "الإجابة: ب";
#:   see ``_WORD_LABELS``) and a few foreign sentence forms ("La respuesta es C");
#: - ``chosen``: "I choose C", "I'll go with (B)", "I'm going with D";
#: - ``stated correct``: "C is correct", "Option (B) is the correct answer", "Option B is
#:   the answer", "The third option is correct";
#: - ``option named``: an option named by its place after any phrase above: "the answer
#:   is option 3", "Answer: 2)", "the third option", "I choose the second one";
#: - ``json``: a JSON or Python dict key: ``{"answer": "C"}``, ``{'final_answer': '(D)'}``
#:   (the value may also be an option's text or place);
#: - ``last line``: the last non-empty line is the letter alone ("**C**", "(C)", "Option C",
#:   "Therefore, option C.");
#: - ``bold``: fallback, a bold letter in the last line, when nothing above was found;
#: - ``last letter``: opt-in last resort (``last_letter=``), the last standalone capital
#:   letter anywhere in the answer, as MMLU-Pro's official script does;
#: - ``invalid letter``: the last stated answer is a letter the question does not have;
#: - ``none``: no answer found.
ChoiceHow = Literal["answer", "answer text", "boxed", "boxed text", "chosen", "stated correct",
                    "option named", "json", "last line", "bold", "last letter",
                    "invalid letter", "none"]


class Choice(NamedTuple):
    """The extracted letter (upper case; ``None`` if none was found) and where it was found."""

    letter: str | None
    how: ChoiceHow


# Answer labels in other languages, each followed by a colon ("Respuesta: C", "答案：C",
# "Réponse : B"). From openai/simple-evals:common.py (MULTILINGUAL_ANSWER_REGEXES, the labels
# of multilingual MMLU's languages): Spanish, French, German, Italian, Portuguese, Swahili,
# Indonesian, Yoruba, Hindi, Bengali, Korean, Chinese, Japanese, Arabic. Added from general
# knowledge (not in that list): Russian, Ukrainian, Bulgarian, Polish, Czech, Dutch,
# Swedish/Danish/Norwegian, Finnish, Hungarian, Romanian, Turkish, Greek, Vietnamese,
# Malay, Filipino, Croatian/Serbian, Lithuanian, Hebrew, Persian, Thai.
# Words (matched after a non-letter, case ignored), with an optional "final"/"correct":
_WORD_LABELS = (
    "respuesta", "réponse", "reponse", "antwort", "risposta", "resposta", "jibu", "jawaban",
    "idahun", "ìdáhùn", "idáhùn", "àmọ̀nà", "àdáhùn", "ànúgọ", "àṣàyàn",
    "ответ", "відповідь", "отговор", "odpowiedź", "odpověď", "antwoord", "svar", "vastaus",
    "válasz", "răspuns", "cevap", "yanıt", "απάντηση", "đáp án", "trả lời", "jawapan",
    "sagot", "odgovor", "atsakymas",
)
# Scripts without word spaces or with prefixes: matched anywhere ("正确答案：").
_SCRIPT_LABELS = (
    "उत्तर", "উত্তর", "답변", "정답", "답", "答案", "答复", "答曰", "答え", "回答", "解答", "答",
    "الإجابة النهائية", "الإجابة الصحيحة هي", "الإجابة الصحيحة", "الإجابة هي", "الإجابة",
    "الجواب النهائي", "الجواب", "إجابة", "תשובה", "پاسخ", "คำตอบ",
)


def _alternatives(words: tuple[str, ...]) -> str:
    """A regex alternation of ``words``, a space matching any run of spaces (the markers'
    pattern is verbose, where a bare space would be ignored)."""
    return "|".join(re.escape(w).replace("\\ ", r"\s+") for w in words)


_LABEL = (
    r"(?<![^\W\d_])(?:" + _alternatives(_WORD_LABELS) + r")"
    r"(?:[ \t]+(?:final|finale|correcta|correcte|correta|corretta|richtige|correcto))?"
    r"|(?:" + _alternatives(_SCRIPT_LABELS) + ")"
)
# "La respuesta es C", "答案是C": the same in a sentence, for the languages models most often
# answer in.
_FOREIGN_PHRASE = (
    r"\b(?:la\s+)?respuesta(?:\s+(?:correcta|final))?\s+es"
    r"|\b(?:la\s+)?r[ée]ponse(?:\s+(?:correcte|finale))?\s+est"
    r"|\b(?:die\s+)?(?:richtige\s+)?antwort\s+(?:ist|lautet)"
    r"|\b(?:a\s+)?resposta(?:\s+(?:correta|final))?\s+[ée]"
    r"|\b(?:la\s+)?risposta(?:\s+(?:corretta|finale))?\s+[èe]"
    r"|答案(?:是|为|應該是|应该是)|答えは"
)

# The phrases after which an answer is stated. Each match only marks a position; the
# payload after it is read by `_read_letter`, with a bounded window.
_MARKERS = re.compile(
    r"""
    (?P<heading>\b(?:final\s+)?answer\b[ \t*_#:]*\n)
    | (?P<answer>\banswer(?:\s+(?:choice|option|letter))?\b(?:[ \t]*(?:\*\*|__))?
        (?: \s+(?:is|was|would\s+be|should\s+be|must\s+be|will\s+be|has\s+to\s+be)\b
          | [ \t]*[:：=]
          | [ \t]+[-–—][ \t]))
    | (?P<option>\b(?:correct|right|best|final)\s+(?:option|choice|letter|one)\b
        (?:[ \t]*(?:\*\*|__))?
        (?: \s+(?:is|would\s+be|should\s+be|must\s+be|will\s+be)\b | [ \t]*[:：=]))
    | (?P<chosen>\b(?:i|we)(?:['’]ll|['’]d|\s+will|\s+would|\s+shall)?\s+
        (?:choose|pick|select|go\s+with|opt\s+for)\b
      | \b(?:i['’]m|i\s+am|we['’]re|we\s+are)\s+(?:going\s+with|choosing|picking|selecting
        |opting\s+for)\b)
    | (?P<boxed>\\(?:boxed|fbox)\s*\{)
    | (?P<json>["'](?:final[_\ ]?)?(?:answer|choice|option|letter
        |correct[_\ ]?(?:answer|option|choice))(?:[_\ ]?letter)?["']\s*:\s*)
    """ + r"| (?P<label>(?:" + _LABEL + r")(?:[ \t\u00a0\u202f]*(?:\*\*|__))?"
    r"[ \t\u00a0\u202f]*[:：ঃ](?:[ \t]*(?:\*\*|__))?)"
    r"| (?P<phrase>(?:" + _FOREIGN_PHRASE + r"))",
    re.IGNORECASE | re.VERBOSE,
)

# "C is correct", "(c) is the right answer", "option B is the best choice", "**D** is correct".
# A bare letter must be upper case (a bare "a" is an article; checked in code, the pattern
# ignores case) and not follow a word that commonly labels something else ("statement I").
_STATED_CORRECT = re.compile(
    r"""
    (?: \b(?:option|choice)\s+\(?(?P<l1>[a-z])\)?
      | \b(?:option|choice)\s+\(?(?P<n1>\d{1,2})\)?
      | \bthe\s+(?P<o1>first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)
        \s+(?:option|choice|one|answer)
      | \((?P<l2>[a-z])\)
      | \*\*\(?(?P<l3>[a-z])\)?\*\*
      | (?<![\w.])(?<!statement\ )(?<!statements\ )(?<!vitamin\ )(?<!claim\ )(?<!part\ )
        (?<!case\ )(?<!point\ )(?<!type\ )(?<!and\ )(?<!only\ )(?<!group\ )
        (?P<l4>[a-z])(?![\w.])
    )
    \s+(?:is|seems\s+to\s+be|appears\s+to\s+be|must\s+be)
    \s+(?:(?:the\s+)?(?:correct|right|best)\b|the\s+(?:final\s+)?answer\b)
    """,
    re.IGNORECASE | re.VERBOSE,
)

# Wrappers and filler between a phrase and its letter: "**", "(", "$", "\text{", "option",
# "therefore", a line break.
_LEAD = re.compile(
    r"""(?:\s|[*_:(\[{$>#`]|\\[(\[]
         |\\(?:boxed|fbox|text(?:bf|rm|it|sc)?|math(?:rm|bf|it|sf)?|bm)\s*\{
         |\b(?:option|choice|letter|therefore|thus|hence|clearly|probably|likely|definitely
               |indeed|then|so|simply)\b)*""",
    re.IGNORECASE | re.VERBOSE,
)
_LETTER = re.compile(r"[A-Za-z]")
_CLOSERS = re.compile(r"(?:[*)\]}$`]|\\[)\]]|[ \t]+(?=[)\]]))+")
# What may follow an unwrapped letter for it to be a letter and not a word: the end, a line
# break, punctuation (not "i.e."), or a space then a bracket, a dash, a capital or one of
# a few words ("C because ..."); "A is wrong" is not an answer.
_FOLLOW = re.compile(
    r"""(?: $ | [\n\r] | [,;:!?。，、；：！？] | \.(?![A-Za-z])
         | [ \t]+(?: $ | [\n\r] | [(\[\-–—] | [A-Z] | (?i:because|since|which)\b
                   | is\b(?!\s+(?i:not|wrong|incorrect|false|unlikely|ruled|eliminated)\b)))""",
    re.VERBOSE,
)
# A phrase preceded by these words states a hypothesis, not an answer: "If the answer is
# A, then ...", "if I choose B".
_HYPOTHETICAL = re.compile(
    r"(?:\b(?:if|whether|suppose|supposing|assume|assuming|unless|si|wenn|falls|se|если)\b"
    r"(?:\s+(?:the|my|our|final|correct|right|best|la|el|le|die|der|a|o|il))*"
    r"|如果|假如|假设|若是|もし)[\s*_]*$",
    re.IGNORECASE,
)
# Letters of other scripts: full-width Latin (read everywhere) and, after an answer label,
# the Arabic letters that label options A-D (openai/simple-evals:common.py,
# normalize_extracted_answer). Bengali letters are not read: simple-evals' mapping of them
# is a transliteration we could not confirm.
_FULLWIDTH = str.maketrans(
    {**{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
     **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)}, "（": "(", "）": ")"})
_ARABIC_LETTER = re.compile(r"([أبجد])(?![\u0600-\u06FF])")
_ARABIC_TO_LATIN = {"أ": "A", "ب": "B", "ج": "C", "د": "D"}
# A reference to an option by its place: "the third option", "option 3", "3)", "(2)",
# "option three", "the last one". Read where a letter would be.
_ORDINAL_WORDS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                  "ninth", "tenth")
_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_REFERENCE = re.compile(
    r"""(?:the\s+)?(?P<ord>first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth
                         |last|1st|2nd|3rd|[4-9]th|10th)\s+(?:option|choice|one|answer
                         |alternative)\b
      | (?P<num>\d{1,2})(?![\d.,]\d|[A-Za-z]) | (?P<word>one|two|three|four|five|six|seven
                                                 |eight|nine|ten)\b""",
    re.IGNORECASE | re.VERBOSE,
)
_NAMES_OPTION = re.compile(r"\b(?:option|choice|alternative)\b", re.IGNORECASE)
_OPTION_LAST_LINE = re.compile(r"(?:(?:so|thus|therefore|hence),?)?(?:option|choice)([A-Za-z])",
                               re.IGNORECASE)
_BOLD = re.compile(r"\*\*\(?([A-Za-z])\)?\*\*")
_LAST_LINE_MARKUP = re.compile(
    r"\\(?:boxed|fbox|text(?:bf)?|mathrm|mathbf)|\\[()\[\]]|[\s*_>#$`()\[\]{}:.]"
)
_PAYLOAD_WINDOW = 400
_BOX_WINDOW = 600
_LATEX_CMD = re.compile(r"\\(?:text(?:bf|rm|it)?|math(?:rm|bf|it)?|operatorname|mbox)\s*")
_LATEX_SPACE = re.compile(r"\\[,;:! ]|\\[()\[\]]")
_SQUEEZE = re.compile(r"[\s{}$*`_]+")


def _norm(text: str) -> str:
    """An option or answer text reduced for comparison: case, spacing, markdown and simple
    LaTeX wrappers do not count."""
    out = _LATEX_SPACE.sub("", text.lower())
    out = _LATEX_CMD.sub("", out)
    out = _SQUEEZE.sub("", out)
    return out.rstrip(".").strip()


class _Options:
    """The options in the order the prompt showed them, normalised once."""

    def __init__(self, letters: str, options: Sequence[str]) -> None:
        self.by_norm: dict[str, list[str]] = {}
        for letter, option in zip(letters, options, strict=False):
            key = _norm(option)
            if key:
                self.by_norm.setdefault(key, []).append(letter)

    def match(self, candidates: Sequence[str]) -> str | None:
        """The letter of the one option equal (normalised) to a candidate, else ``None``."""
        for candidate in candidates:
            found = self.by_norm.get(_norm(candidate))
            if found is not None:
                return found[0] if len(found) == 1 else None  # ambiguous: two equal options
        return None


def _read_letter(text: str, start: int, end: int, in_box: bool) -> str | None:
    """The letter (upper case) written at ``start`` after wrappers and filler, or ``None``
    when what is written there is a word, an expression or nothing."""
    lead = _LEAD.match(text, start, end)
    pos = lead.end() if lead else start
    letter = _LETTER.match(text, pos, end)
    if letter is None:
        return None
    after = letter.end()
    if after < end and (text[after].isalnum() or text[after] in "'’_"):
        return None  # "Mitochondria", "A2", "I'm", "a_1": a word, not a letter
    closers = _CLOSERS.match(text, after, end)
    stop = closers.end() if closers else after
    if in_box:
        rest = text[stop:end].strip()
        ok = not rest or ")" in text[after:stop] or rest[0] in ".:"
    else:
        ok = stop > after or _FOLLOW.match(text, after) is not None
    return letter.group(0).upper() if ok else None


_AMBIGUOUS = "?"
_PAST_LAST = "!"  # "option 6" of four: not a valid letter, so an "invalid letter"


def _read_reference(text: str, start: int, end: int, letters: str,
                    options: Sequence[str]) -> str | None:
    """The letter of an option named by its place at ``start`` ("option 3", "3)", "(2)",
    "option three", "the third option", "the second one", "the last choice"), or ``None``.

    A bare number ("Answer: 3") is a value, not a place, unless "option"/"choice" or a
    closing parenthesis marks it. Returns ``_AMBIGUOUS`` when a number names one option by
    place and another by its text (options "3, 5, 7, 9" and "3)"), and ``_PAST_LAST`` for a
    place past the last option. "the last ..." needs ``options``.
    """
    lead = _LEAD.match(text, start, end)
    pos = lead.end() if lead else start
    ref = _REFERENCE.match(text, pos, end)
    if ref is None:
        return None
    after = ref.end()
    closers = _CLOSERS.match(text, after, end)
    stop = closers.end() if closers else after
    numbered = ref.group("ord") is None
    if numbered:
        raw = ref.group("num") or ref.group("word")
        named = _NAMES_OPTION.search(text, start, pos) is not None
        parenthesised = closers is not None and ")" in closers.group(0)
        if not named and (ref.group("word") or not parenthesised):
            return None
        index = int(raw) - 1 if raw.isdigit() else _NUMBER_WORDS.index(raw.lower())
    else:
        word = ref.group("ord").lower()
        if word == "last":
            if not options:
                return None
            index = len(options) - 1
        else:
            index = (_ORDINAL_WORDS.index(word) if word in _ORDINAL_WORDS
                     else int(word[:-2]) - 1)
    if stop < end and _FOLLOW.match(text, stop) is None:
        return None  # "option 3 is wrong", "the third option's", "(1) the pressure ..."
    if not 0 <= index < len(letters):
        return _PAST_LAST
    if numbered and options and any(_norm(o) == str(index + 1)
                                    for i, o in enumerate(options) if i != index):
        return _AMBIGUOUS
    return letters[index]


def _text_candidates(text: str, start: int, end: int) -> list[str]:
    """The answer text after a phrase: the rest of its line, and its first clause."""
    lead = _LEAD.match(text, start, end)
    pos = lead.end() if lead else start
    line = text[pos:end].split("\n", 1)[0].strip()
    if not line:
        return []
    out = [line]
    for cut in (". ", ", ", " (", " because", " since", " which", "**"):
        head = line.split(cut, 1)[0].strip()
        if head and head not in out:
            out.append(head)
    return out


def _box_end(text: str, start: int) -> int | None:
    """The index of the brace closing the box opened just before ``start``."""
    depth = 1
    limit = min(len(text), start + _BOX_WINDOW)
    for i in range(start, limit):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _check_letters(letters: str) -> None:
    if not letters or not (letters.isascii() and letters.isalpha() and letters.isupper()) or (
        len(set(letters)) != len(letters)
    ):
        raise ValueError(f"letters {letters!r}: give distinct upper-case letters, e.g. 'ABCD'")


def extract_choice(text: str, letters: str, options: Sequence[str] = (), *,
                   last_letter: str = "") -> Choice:
    """The letter a (possibly very long) answer settles on.

    Recognised statements, wherever they are in the last ``MAX_TAIL`` characters: "Answer:
    C", "**Answer:** (B)", "ANSWER: d", "the answer is (c)", "Final answer: B) <text>",
    "The correct option is A.", ``\\boxed{D}``, ``\\boxed{\\text{D}}``, ``\\boxed{(D)}``,
    "I choose C", "C is correct", a last line holding only the letter ("**C**"), and, when
    ``options`` are given, the text of one option in place of its letter ("Answer:
    mitochondria"). Also: answer labels of other languages ("Respuesta: C", "答案：C",
    "Réponse : B"; full-width letters and, after a label, the Arabic letters for A-D),
    JSON (``{"answer": "C"}``), an option named by its place ("the answer is option 3",
    "Answer: 2)", "the third option", "option two"; a bare number such as "Answer: 3" is a
    value, read only as the text of an option). The *last* statement wins, so a change of
    mind counts, in whatever form it is restated. Letters mentioned while reasoning do not
    count ("Option A is wrong because...", "the third option is incorrect", the article
    "a", the pronoun "I"), nor hypotheses ("If the answer is A, ...", "Si la respuesta es
    A", "如果答案是A"). Where a statement is ambiguous ("3)" when the options are the
    numbers 2, 3, 4, 5), no answer is found rather than a guess.

    Args:
        text: the model's answer (reasoning already removed, if the endpoint separated it).
        letters: the valid letters, in order, e.g. ``"ABCD"``; a letter outside them is not
            an answer to this question.
        options: the option texts in the order shown (``options[i]`` is labelled
            ``letters[i]``); used only to recognise an answer given as option text, and
            only when that text matches exactly one option (case, spacing, markdown and
            simple LaTeX wrappers ignored).
        last_letter: when nothing else is found, take the last standalone capital letter
            among these (how ``"last letter"``; one outside ``letters`` is an ``"invalid
            letter"``): the last step of MMLU-Pro's official cascade, ``\\b[A-J]\\b(?!.*
            \\b[A-J]\\b)`` with ``last_letter="ABCDEFGHIJ"``
            (TIGER-AI-Lab/MMLU-Pro:evaluate_from_api.py). It reads the pronoun "I" as a
            letter, as that script does. ``""`` (the default): off.

    Returns:
        ``Choice(letter, how)``: the upper-case letter, or ``None`` with how ``"none"``
        (nothing stated) or ``"invalid letter"`` (the last statement names a letter the
        question does not have, e.g. "Answer: E" with letters ``"ABCD"``). Never raises
        on any text.

    Raises:
        ValueError: ``letters`` is empty or not distinct upper-case ASCII letters.

    Example:
        >>> extract_choice("Option A fails. Answer: A? No. Answer: (c)", "ABCD")
        Choice(letter='C', how='answer')
    """
    _check_letters(letters)
    tail = text[-MAX_TAIL:].translate(_FULLWIDTH)
    valid = frozenset(letters)
    known = _Options(letters, options) if options else None
    found: list[tuple[int, str | None, ChoiceHow]] = []

    def reference(start: int, end: int, how: ChoiceHow) -> bool:
        """Record an option named by its place ("option 3", "the third one"), if any."""
        named = _read_reference(tail, start, end, letters, options)
        if named is None:
            return False
        if named == _AMBIGUOUS:  # "3)" among numeric options: no answer, not a guess
            found.append((start, None, "none"))
        else:
            found.append((start, named, how) if named in valid
                         else (start, None, "invalid letter"))
        return True

    for match in _MARKERS.finditer(tail):
        kind = match.lastgroup
        start, after = match.start(), match.end()
        if kind == "json":
            quote = tail[after : after + 1]
            value_end = (tail.find(quote, after + 1, after + _PAYLOAD_WINDOW)
                         if quote and quote in "\"'" else -1)
            if value_end < 0:
                continue
            letter = _read_letter(tail, after + 1, value_end, in_box=True)
            if letter is not None:
                found.append((start, letter, "json") if letter in valid
                             else (start, None, "invalid letter"))
            elif not reference(after + 1, value_end, "json") and known is not None and (
                    text_letter := known.match([tail[after + 1 : value_end]])):
                found.append((start, text_letter, "json"))
            continue
        if kind == "boxed":
            close = _box_end(tail, after)
            if close is None:
                continue
            letter = _read_letter(tail, after, close, in_box=True)
            if letter is not None:
                found.append((start, letter, "boxed") if letter in valid
                             else (start, None, "invalid letter"))
            elif known is not None and (text_letter := known.match([tail[after:close]])):
                found.append((start, text_letter, "boxed text"))
            continue
        if _HYPOTHETICAL.search(tail, max(0, start - 40), start):
            continue
        end = min(len(tail), after + _PAYLOAD_WINDOW)
        letter = _read_letter(tail, after, end, in_box=False)
        if letter is None and kind == "label":
            lead = _LEAD.match(tail, after, end)
            arabic = _ARABIC_LETTER.match(tail, lead.end() if lead else after)
            letter = _ARABIC_TO_LATIN[arabic.group(1)] if arabic else None
        if letter is not None and letter in valid:
            found.append((start, letter, "chosen" if kind == "chosen" else "answer"))
            continue
        if letter is None and reference(after, end, "option named"):
            continue
        if known is not None and kind != "chosen":
            text_letter = known.match(_text_candidates(tail, after, end))
            if text_letter is not None:
                found.append((start, text_letter, "answer text"))
                continue
        if letter is not None:
            found.append((start, None, "invalid letter"))

    for match in _STATED_CORRECT.finditer(tail):
        bare = match.group("l4")
        if bare is not None and not bare.isupper():
            continue
        start = match.start()
        if _HYPOTHETICAL.search(tail, max(0, start - 40), start):
            continue
        if match.group("n1") or match.group("o1"):
            reference(start, match.end(), "stated correct")
            continue
        raw = bare or match.group("l1") or match.group("l2") or match.group("l3")
        if raw.upper() in valid:
            found.append((start, raw.upper(), "stated correct"))

    stripped = tail.rstrip()
    line_start = stripped.rfind("\n") + 1
    core = _LAST_LINE_MARKUP.sub("", stripped[line_start:])
    option_line = _OPTION_LAST_LINE.fullmatch(core)
    if option_line is not None:  # "**Option C**", "Therefore, option C."
        core = option_line.group(1)
    if len(core) == 1 and core.upper() in valid:
        found.append((line_start, core.upper(), "last line"))

    if found:
        _, letter, how = max(found, key=lambda item: item[0])
        return Choice(letter, how)
    bold = [m.group(1).upper() for m in _BOLD.finditer(stripped, line_start)]
    bold = [b for b in bold if b in valid]
    if bold:
        return Choice(bold[-1], "bold")
    if last_letter:
        _check_letters(last_letter)
        standalone = None
        for standalone in re.finditer(rf"\b[{last_letter}]\b", tail):
            pass
        if standalone is not None:
            found_letter = standalone.group(0)
            return (Choice(found_letter, "last letter") if found_letter in valid
                    else Choice(None, "invalid letter"))
    return Choice(None, "none")


def shuffle_choices(n: int, seed: int) -> tuple[int, ...]:
    """The order of ``n`` choices for one attempt: ``order[position] = original index``.

    Drawn as ``random.Random(seed).sample(range(n), n)``, the draw simple-evals makes per
    GPQA repeat (openai/simple-evals:gpqa_eval.py), so the same seed always gives the same
    order, on any machine.

    Example:
        >>> shuffle_choices(4, 0)
        (3, 1, 0, 2)
    """
    if n < 1:
        raise ValueError(f"n={n}: a question needs at least one choice")
    return tuple(random.Random(seed).sample(range(n), n))


def choice_grader(
    *,
    alphabet: str = ALPHABET,
    choices_field: str = "choices",
    permutation_field: str = "permutation",
    last_letter: str = "",
) -> Grader:
    """A grader for multiple-choice samples: the extracted letter must equal the gold.

    The gold is ``sample.target``, the letter of the correct option *in the order the
    attempt showed* (after any shuffle). The valid letters and option texts come from the
    sample's metadata: ``choices_field`` holds the option texts in dataset order as a JSON
    list, ``permutation_field`` the attempt's order as a JSON list of dataset indices
    (absent: dataset order). A sample without ``choices_field`` accepts every letter of
    ``alphabet`` and no option text.

    The grade's ``details`` keep ``permutation`` (list or ``None``), ``gold_letter`` and
    ``how`` (see ``ChoiceHow``). No answer found, or a letter the question does not have,
    is wrong (reason "no answer found" / "invalid letter"), never an error.

    Args:
        alphabet: the labels, in order.
        choices_field: metadata field with the option texts.
        permutation_field: metadata field with the attempt's order.
        last_letter: the last-resort letters of ``extract_choice`` (``""``: off).

    Returns:
        The async grader ``(answer, sample) -> Grade``. It raises ``ValueError`` when the
        sample's metadata is malformed (the runner records that as "grading failed").

    Example:
        >>> grade = choice_grader()
        >>> # await grade("... Answer: C", sample)  -> Grade("C", True, "match (answer)", ...)
    """

    async def grade(answer: str, sample: Sample) -> Grade:
        meta = dict(sample.metadata)
        raw_choices = meta.get(choices_field)
        raw_perm = meta.get(permutation_field)
        permutation: list[int] | None = None
        options: list[str] = []
        letters = alphabet
        if isinstance(raw_choices, str):
            choices = json.loads(raw_choices)
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise ValueError(f"{choices_field} of sample {sample.id!r} is not a list of "
                                 "strings")
            permutation = list(range(len(choices)))
            if isinstance(raw_perm, str):
                permutation = json.loads(raw_perm)
                if sorted(permutation) != list(range(len(choices))):
                    raise ValueError(f"{permutation_field} {raw_perm!r} of sample "
                                     f"{sample.id!r} does not order its {len(choices)} choices")
            options = [choices[i] for i in permutation]
            letters = alphabet[: len(options)]
        gold = sample.target.strip().upper()
        letter, how = extract_choice(answer, letters, options, last_letter=last_letter)
        details: dict[str, Any] = {"permutation": permutation, "gold_letter": gold, "how": how}
        if letter is None:
            reason = "invalid letter" if how == "invalid letter" else "no answer found"
            return Grade(None, False, reason, details)
        if letter == gold:
            return Grade(letter, True, f"match ({how})", details)
        return Grade(letter, False, f"mismatch ({how})", details)

    return grade
