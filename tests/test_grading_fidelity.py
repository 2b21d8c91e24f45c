"""Answers read wherever they are stated (issue 11, item 7): one table per rule.

Every row is written for this suite in the style of reasoning-model answers (no model
output is quoted); math golds naming a MATH-500 item say so. The acceptance sets in
``bench/acceptance/`` measure the same rules on *different* examples
(``python bench/grading_acceptance.py``), so a rule tuned to these rows is caught there.
Rows whose expectation is ``None`` / ``False`` are the precision side: an ambiguous or
dismissive statement must give no answer, never a wrong letter or a false "equal".
"""

from __future__ import annotations

import pytest

from evals.grading.aime import _as_int
from evals.grading.choice import extract_choice
from evals.grading.math_compare import check_equivalence, grade_math_answer
from evals.grading.math_expr import number_from_words

OPTIONS = ("Sodium", "Potassium", "Calcium", "Iron")
NUMERIC = ("2", "4", "6", "8")

# (id, response, letters, options, expected letter or None)
CHOICE_ROWS = [
    ("spanish label with final", "Respuesta final: D", "ABCD", (), "D"),
    ("french label, narrow no-break space", "Réponse\u202f: C", "ABCD", (), "C"),
    ("german label after reasoning", "Die Energie bleibt erhalten.\nAntwort: A", "ABCD", (),
     "A"),
    ("chinese label inside a longer label", "正确答案：B", "ABCD", (), "B"),
    ("chinese sentence form", "所以答案是D。", "ABCD", (), "D"),
    ("japanese label", "答え：A", "ABCD", (), "A"),
    ("korean label", "답변: C", "ABCD", (), "C"),
    ("arabic label, arabic letter", "الجواب: د", "ABCD", (), "D"),
    ("arabic label, arabic word is not a letter", "الإجابة: بسبب الحرارة", "ABCD", (), None),
    ("hindi label, parenthesised letter", "उत्तर: (B)", "ABCD", (), "B"),
    ("bengali visarga label", "উত্তরঃ C", "ABCD", (), "C"),
    ("russian label", "Ответ: D", "ABCD", (), "D"),
    ("portuguese sentence form", "Portanto, a resposta correta é B.", "ABCD", (), "B"),
    ("vietnamese two-word label", "Đáp án: A", "ABCD", (), "A"),
    ("full-width letter without a label", "最后一行\n**Ｄ**", "ABCD", (), "D"),
    ("json with a choice key", 'Done.\n{"choice": "B", "confidence": 0.8}', "ABCD", (), "B"),
    ("json answer_letter key", '{"answer_letter": "d"}', "ABCD", (), "D"),
    ("json placeholder is not an answer", 'Reply as {"answer": "X"} where X is a letter.',
     "ABCD", (), None),
    ("json option text", '{"answer": "Calcium"}', "ABCD", OPTIONS, "C"),
    ("json letter past the options", '{"answer": "F"}', "ABCD", (), None),
    ("option letter as the last line", "Checked twice.\n\nThus, option D", "ABCD", (), "D"),
    ("option letter is the answer", "Option A is the answer here.", "ABCD", (), "A"),
    ("i am choosing option", "I am choosing option C.", "ABCD", (), "C"),
    ("option number after the label", "Answer: option 4", "ABCD", (), "D"),
    ("number with closing parenthesis", "Final answer: 1)", "ABCD", (), "A"),
    ("numbered option is correct", "Choice 2 is correct.", "ABCD", (), "B"),
    ("option number in words", "The answer is option two.", "ABCD", (), "B"),
    ("bare number is a value, not a place", "Answer: 2", "ABCD", (), None),
    ("bare number naming option text", "Answer: 6", "ABCD", NUMERIC, "C"),
    ("parenthesised number among numeric options is ambiguous", "Answer: (2)", "ABCD",
     NUMERIC, None),
    ("numbered item starting an explanation", "The answer: (2) the ions move, (3) ...",
     "ABCD", (), None),
    ("ordinal after a phrase", "The correct answer is the second choice.", "ABCD", (), "B"),
    ("ordinal chosen", "I'll go with the fourth one.", "ABCD", (), "D"),
    ("numeric ordinal", "Answer: the 3rd option", "ABCD", (), "C"),
    ("last option needs the options", "The answer is the last option.", "ABCD", OPTIONS, "D"),
    ("last option without options is not read", "The answer is the last option.", "ABCD", (),
     None),
    ("ordinal past the options", "The answer is the sixth option.", "ABCD", (), None),
    ("ordinal dismissed", "The fourth option is wrong; so is the first.", "ABCD", (), None),
    ("option number dismissed", "Option 1 is incorrect because sodium is too light.",
     "ABCD", (), None),
    ("hypothetical option number", "Suppose the answer is option 3; then iron rusts.",
     "ABCD", (), None),
    ("german hypothetical", "Wenn die Antwort ist C, dann stimmt die Ladung nicht.", "ABCD",
     (), None),
    ("chinese hypothetical", "如果答案是A，电荷不守恒。", "ABCD", (), None),
    ("label followed by a word", "Antwort: Kalium ist richtig", "ABCD", (), None),
    ("restatement in another form wins", ("Answer: A\n\nHmm, that ignores the charge. "
     "Reconsidering, the answer is the third option."), "ABCD", (), "C"),
    ("json restatement wins over a label", 'Respuesta: B\n\nWait.\n{"answer": "D"}', "ABCD",
     (), "D"),
    ("numbered restatement wins", "Option 4 is correct. No - recheck: option 2 is correct.",
     "ABCD", (), "B"),
]


@pytest.mark.parametrize(("response", "letters", "options", "expected"),
                         [row[1:] for row in CHOICE_ROWS], ids=[row[0] for row in CHOICE_ROWS])
def test_choice_statement(response: str, letters: str, options: tuple[str, ...],
                          expected: str | None) -> None:
    found = extract_choice(response, letters, options)
    assert found.letter == expected, found


# (id, gold, response, equal)
MATH_ROWS = [
    ("fraction in a closing sentence", "\\frac{5}{6}", ("Both cases together give it.\n\n"
     "Hence the ratio is 5/6."), True),
    ("number word after the answer phrase", "7", "The answer is seven.", True),
    ("compound number word", "123", "So there are one hundred twenty-three.", True),
    ("weekday in a closing sentence", "\\text{Friday}", ("Add 4 days to Monday.\n\n"
     "The party is on Friday."), True),
    ("name in a closing sentence", "\\text{Evelyn}", ("Comparing slopes, the fastest runner "
     "is Evelyn."), True),  # gold: math500 test/algebra/1349.json
    ("fraction in words", "\\frac{2}{3}", "The share is two thirds.", True),
    ("wrong weekday", "\\text{Friday}", "The party is on Saturday.", False),
    ("wrong number word", "7", "The answer is seventeen.", False),
    ("long clause is not an answer", "7", ("The result is that we cannot decide between the "
     "two remaining cases yet."), False),
    ("programming exponent", "0.00042", "Final answer: 4.2e-4", True),
    ("programming exponent, capital and plus", "42000", "Final answer: 4.2E+4", True),
    ("exponent in words, power of", "0.04", ("The answer is 4 times 10 to the power of "
     "negative 2."), True),
    ("unbraced negative exponent", "4.2\\times10^{-4}", "\\boxed{4.2 \\times 10^-4}", True),
    ("exponent in words off by one", "0.04", "The answer is 4 times 10 to the minus 3.", False),
    ("reversed strict chain", "(2,5)", "\\boxed{5 > x > 2}", True),
    ("reversed chain, closed low end", "[2,5)", "\\boxed{5 > x \\ge 2}", True),
    ("reversed chain against a chain", "2 \\le x < 5", "\\boxed{5 > x \\geq 2}", True),
    ("reversed chain, closed end misplaced", "[2,5)", "\\boxed{5 \\ge x > 2}", False),
    ("abs inside, open", "(1,5)", "\\boxed{|x - 3| < 2}", True),
    ("abs inside, closed", "[1,5]", "\\boxed{\\left|x-3\\right| \\le 2}", True),
    ("abs with a slope", "\\left(\\frac{3}{5},\\frac{8}{3}\\right)",
     "\\boxed{|30x - 49| < 31}", True),  # gold shape: math500 test/algebra/2486.json
    ("abs bound first", "(1,5)", "\\boxed{2 > |x - 3|}", True),
    ("abs outside is a union", "(-\\infty,1) \\cup (5,\\infty)", "\\boxed{|x-3| > 2}", True),
    ("abs negative bound is empty", "\\emptyset", "\\boxed{|x - 3| < -1}", True),
    ("abs open vs closed", "(1,5)", "\\boxed{|x - 3| \\le 2}", False),
    ("abs inside vs outside", "(1,5)", "\\boxed{|x - 3| > 2}", False),
    ("varnothing", "\\varnothing", "\\boxed{\\emptyset}", True),
    ("braces", "\\emptyset", "\\boxed{\\{ \\}}", True),
    ("no real solutions", "\\emptyset", ("There are no real solutions.\n\nFinal answer: "
     "no real solutions"), True),
    ("null set", "\\emptyset", "Final answer: the null set", True),
    ("empty set vs zero", "\\emptyset", "\\boxed{\\{0\\}}", False),
    ("empty set vs the word none of a list", "\\{1,2\\}", "\\boxed{\\emptyset}", False),
    ("closed interval vs two solutions", "2, 6", "\\boxed{[2, 6]}", False),
    ("two solutions vs closed interval", "[2, 6]", "\\boxed{2, 6}", False),
    ("half-open interval vs two solutions", "[2, 6)", "\\boxed{2 \\text{ or } 6}", False),
    ("closed interval vs itself", "[2, 6]", "\\boxed{[2,6]}", True),
    ("list vs list", "6, 2", "\\boxed{2, 6}", True),
]


@pytest.mark.parametrize(("gold", "response", "equal"), [row[1:] for row in MATH_ROWS],
                         ids=[row[0] for row in MATH_ROWS])
def test_math_statement(gold: str, response: str, equal: bool) -> None:
    verdict = grade_math_answer(gold, response)
    assert verdict["correct"] is equal, verdict


@pytest.mark.parametrize(("text", "value"), [
    ("nineteen", 19), ("ninety-nine", 99), ("two thousand and twenty", 2020),
    ("minus four", -4), ("a quarter", 0.25), ("five halves", 2.5),
])
def test_number_words(text: str, value: float) -> None:
    assert number_from_words(text) == value


@pytest.mark.parametrize("text", ["nine nine", "hundred", "one fourths", "the answer", "x"])
def test_not_number_words(text: str) -> None:
    assert number_from_words(text) is None


def test_aime_reads_a_number_word() -> None:
    assert _as_int("seventy-three") == 73


def test_empty_set_is_symmetric() -> None:
    assert check_equivalence("\\text{no solution}", "\\varnothing").equal
    assert check_equivalence("\\varnothing", "no solution").equal
