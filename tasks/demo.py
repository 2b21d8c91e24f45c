"""demo_math: eight AIME-style problems written for this project, shipped in the package.

They exist so that ``evals demo`` runs the whole pipeline on a fresh offline machine. They
are not a benchmark: scores on them mean nothing about a model.
"""

from __future__ import annotations

from pathlib import Path

from evals_tasks.aime import aime_sample

import evals
from evals.grading.aime import grade_aime
from evals.registry import DatasetSpec, Task, task


@task("demo_math")
def demo_math() -> Task:
    """Eight integer-answer problems shipped with the harness (for the demo, not a benchmark)."""
    return Task(
        name="demo_math",
        dataset=DatasetSpec("(shipped with the package)", split="train"),
        to_sample=aime_sample,
        grader=grade_aime,
        n=4,
        subsets=("topic",),
        default_data=Path(evals.__file__).parent / "demo_data" / "demo_math.jsonl",
        description="demo problems",
    )
