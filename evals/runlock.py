"""The run folder's lock: one run at a time writes a run folder.

A run holds ``run.lock`` in its folder with ``fcntl.flock`` from before it writes anything
there until its folder is complete. The lock belongs to the open file, so it dies with the
process: a run killed with SIGKILL leaves no stale lock, and the file left behind (it holds
the PID of the last run that took it) means nothing by itself. The file is opened
close-on-exec, so programs a run starts (sandboxes, grading workers) never inherit it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evals.errors import RunFolderBusy

__all__ = ["LOCK_NAME", "hold_run_folder"]

#: The lock file's name inside a run folder.
LOCK_NAME = "run.lock"


@contextmanager
def hold_run_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the ``with`` block (the folder must exist).

    Another process, or another run in this process, that asks for the same folder's lock
    meanwhile is refused at once.

    Raises:
        RunFolderBusy: another run holds the lock; the message names the folder and the
            holder's PID, on one line.
    """
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise RunFolderBusy(
                f"Run folder {folder} is in use: another run ({holder}) holds its lock "
                f"{path}. Wait for it to finish, or give this run another --out."
            ) from None
        try:  # who holds it, for the message of a run refused meanwhile
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk: the lock holds all the same
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """``pid N`` from the lock file; the holder writes it just after taking the lock, so a
    refused run may read it a moment early."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return f"pid {text}"
        time.sleep(0.01)
    return "PID unknown"
