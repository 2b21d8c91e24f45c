"""Graders: extract an answer from model text, compare it with the gold, say why.

Every grader has the three layers of the style guide: *extract* (find the stated answer in
the response), *compare* (a bool against the gold; the gold is always the first argument
and decides the conventions), and *aggregate* (``evals.metrics``, on score tables). The
module names say the benchmark family first, then the layer:

Math (MATH-500 and similar free-form answers)
    ``math_extract``  extract: the final answer of a response (``\\boxed{}``, "the answer
                      is ...", an answer line, a sentence stating it); shared by every
                      math grader, so no plugin re-parses ``\\boxed{}``.
    ``math_compare``  compare, structure: normalisation (units, degrees, percent, words),
                      tuples, sets, intervals, inequalities, equations, the empty set;
                      ``check_equivalence(gold, answer)`` and ``grade_math_answer`` (extract
                      then compare, run in a worker of ``pool``).
    ``math_expr``     compare, single values: exact numbers, the arithmetic evaluator and
                      the capped sympy fallback that ``math_compare`` hands values to.
``aime``              AIME: extraction as ``math_extract`` plus an integer comparison.
``choice``            multiple choice: the letter a response settles on, compared with the
                      gold letter; the seeded shuffle of the options.
``code``, ``lcb``     code: program extraction and test execution (``lcb``: LiveCodeBench
                      test decoding); ``_runner`` runs inside the sandbox.
``pool``, ``context`` the worker pool with a hard per-call time limit, and the grading
                      context (pool, sandbox executor, options) a run provides.

Old names: ``equiv`` (now ``math_compare``), ``extract`` (``math_extract``), ``math``
(``aime``) and ``mathgrade`` (``math_expr``). The first three remain as re-exports, without
code of their own, until nothing outside this package imports them.
"""
