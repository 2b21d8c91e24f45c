"""The public API is explicit: ``evals.__all__`` is sorted and names exactly what exists."""

from __future__ import annotations

import evals


def test_all_is_sorted_and_complete():
    assert evals.__all__ == sorted(evals.__all__)
    for name in evals.__all__:
        assert getattr(evals, name) is not None, name
    import types

    public = {n for n in dir(evals)
              if not n.startswith("_") and not isinstance(getattr(evals, n), types.ModuleType)}
    assert public - {"annotations", "TYPE_CHECKING", "Any"} - set(evals.__all__) == set()


def test_importing_evals_is_cheap():
    import subprocess
    import sys

    code = "import evals, sys; print(sorted(m for m in ('pandas','datasets','sympy','matplotlib','pyarrow','aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
