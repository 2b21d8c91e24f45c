"""The notebooks run, so they cannot rot: each is executed top to bottom with nbclient.

The kernel is ipykernel's ``python3``; jupyter_client starts it with this interpreter
(``sys.executable``), so the notebooks import the same ``evals`` as the tests. Data comes
from ``$EVALS_TEST_DATA`` (set here to the shared data folder); run folders go to a
temporary ``$EVALS_NOTEBOOK_OUT``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             data_root: Path) -> Any:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("EVALS_TEST_DATA", str(data_root))
    monkeypatch.setenv("EVALS_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.delenv("EVALS_BASE_RUN", raising=False)
    monkeypatch.delenv("EVALS_NEW_RUN", raising=False)
    path = NOTEBOOKS / name
    book = nbformat.read(path, as_version=4)
    # Nothing is committed but the code: a notebook saved with outputs fails here.
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in book.cells if c.cell_type == "code"), f"{name} has outputs committed"
    client = NotebookClient(book, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return book


def _outputs(book: Any) -> list[dict[str, Any]]:
    return [o for c in book.cells if c.cell_type == "code" for o in c.outputs]


def _images(book: Any) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(book))


@pytest.mark.slow
def test_reproduce_model_card_runs_and_draws_its_figures(tmp_path, monkeypatch,
                                                         aime2025_path):
    book = _execute("reproduce_model_card.ipynb", tmp_path, monkeypatch,
                    aime2025_path.parents[1])
    assert not [o for o in _outputs(book) if o.get("output_type") == "error"]
    assert _images(book) >= 4
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                   for o in _outputs(book))
    assert "task aime2025" in text and "77.34" in text  # the card's number, compared
    assert (tmp_path / "notebook-reproduce" / "samples.parquet").is_file()


@pytest.mark.slow
def test_compare_runs_runs_and_lists_the_flipped_problems(tmp_path, monkeypatch,
                                                          aime2025_path):
    book = _execute("compare_runs.ipynb", tmp_path, monkeypatch, aime2025_path.parents[1])
    assert not [o for o in _outputs(book) if o.get("output_type") == "error"]
    assert _images(book) >= 3
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                   for o in _outputs(book))
    assert "Flipped worse" in text and "tasks failing a 5-point gate: ['aime2025']" in text
    assert (tmp_path / "notebook-compare-new" / "samples.parquet").is_file()


def test_the_notebook_kernel_is_this_interpreter():
    """jupyter_client swaps the spec's bare ``python`` for ``sys.executable``."""
    import sys

    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    manager = KernelManager(kernel_name="python3")
    command = manager.format_kernel_cmd()
    assert spec.argv[0] in ("python", "python3", sys.executable) and command[0] == sys.executable
