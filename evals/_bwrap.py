"""The bubblewrap layer of the sandbox: finding ``bwrap``, its command line, the probe.

``evals.sandbox`` runs and supervises programs (limits, output caps, the wall clock);
this module only says *how* a program is wrapped: which ``bwrap`` binary
(``$EVALS_BWRAP``, else ``PATH``), the bubblewrap options and file-system layout, the
in-sandbox ``unshare``/``prlimit`` wrappers, and a probe that runs ``true`` the same way
to tell whether bubblewrap works on this machine (and, if not, what the fix is).

The process cap. ``RLIMIT_NPROC`` counts the tasks (processes *and* threads) of a user
id, and the kernel never enforces it for host uid 0. Since Linux 5.14 the count is kept
per user namespace, so a fresh user namespace per program makes the cap per program:

* run by an ordinary user, bubblewrap creates the user namespace (``--unshare-user``) and
  the program runs under the user's own uid, so at most ``processes`` tasks of the program
  exist at once (bubblewrap's own init counts as one);
* run by root, bubblewrap keeps root's capabilities and uid 0 would make the cap void,
  so the program is started as uid/gid 65534 (``nobody``) with no supplementary groups
  and no capabilities (``unshare --setuid``), then enters a user namespace of its own
  (``unshare --user``); the cap counts the program's tasks only, whatever runs in
  parallel. A program that is root-owned nowhere cannot signal bubblewrap's init either.

``prlimit`` runs last, after the user namespace exists: the kernel also checks each
ancestor level against the limit in force when a namespace was created, so a cap set
earlier would make all programs running in parallel share it. For the same reason a user
namespace the program makes itself cannot escape the cap (and as an ordinary user
bubblewrap forbids nested user namespaces outright, ``--disable-userns``).
"""

from __future__ import annotations

import functools
import math
import os
import posixpath
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from evals.sandbox import Limits

#: The uid and gid a program runs under when the harness runs as root.
NOBODY = 65534
#: The sandbox's one writable directory: working directory, ``$HOME`` and ``$TMPDIR``.
SANDBOX_HOME = "/tmp"
#: Names a ``bwrap`` binary to use instead of the one on ``PATH``; a path that does not
#: exist makes bubblewrap unavailable (how the tests simulate a machine without it).
BWRAP_ENV = "EVALS_BWRAP"
INSTALL = "apt-get install -y bubblewrap"
UNSAFE_HINT = ("or pass --unsafe-no-sandbox to run model-written code without isolation "
               "knowingly")
_MIN_BWRAP = (0, 8)  # --size and --perms for tmpfs


class Found(NamedTuple):
    """The ``bwrap`` binary to use, or why there is none (naming the fix)."""

    path: str | None
    problem: str


def find_bwrap() -> Found:
    """The ``bwrap`` to use: ``$EVALS_BWRAP`` if set, else the one on ``PATH``.

    Returns:
        ``Found(path, "")``, or ``Found(None, why)`` where ``why`` names what is missing
        and the fix (the install command, or ``--unsafe-no-sandbox``).
    """
    chosen = os.environ.get(BWRAP_ENV, "")
    if chosen:
        if os.path.isfile(chosen) and os.access(chosen, os.X_OK):
            return Found(chosen, "")
        return Found(None, f"{BWRAP_ENV}={chosen} is not an executable file, so model-written "
                     f"code cannot be isolated. Point {BWRAP_ENV} at bwrap or unset it to use "
                     f"the one on PATH (Debian/Ubuntu: {INSTALL}) {UNSAFE_HINT}.")
    found = shutil.which("bwrap")
    if found is None:
        return Found(None, "bubblewrap ('bwrap') is not on PATH, so model-written code cannot "
                     f"be isolated. Install it (Debian/Ubuntu: {INSTALL}; Fedora: dnf install "
                     f"bubblewrap) {UNSAFE_HINT}.")
    return Found(found, "")


def environment(home: str) -> dict[str, str]:
    """The whole environment of a program whose ``$HOME`` is ``home`` (nothing inherited)."""
    interpreter_bin = os.path.dirname(sys.executable)
    return {
        "PATH": f"{interpreter_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": home,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
    }


def rlimits(limits: Limits) -> list[tuple[int, int, int]]:
    """``(resource, soft, hard)`` for every limit an rlimit enforces."""
    cpu = max(1, math.ceil(limits.cpu_s))
    return [
        (resource.RLIMIT_AS, limits.memory_mb << 20, limits.memory_mb << 20),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, limits.file_size_mb << 20, limits.file_size_mb << 20),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]


#: ``prlimit`` option of each rlimit ``rlimits`` returns.
PRLIMIT_FLAGS = {
    resource.RLIMIT_AS: "--as",
    resource.RLIMIT_CPU: "--cpu",
    resource.RLIMIT_FSIZE: "--fsize",
    resource.RLIMIT_NOFILE: "--nofile",
    resource.RLIMIT_CORE: "--core",
}


def bwrap_command(bwrap: str, as_root: bool, limits: Limits, info_fd: int,
                  file_args: list[str], argv: list[str]) -> list[str]:
    """The whole command line: host wrapper, bubblewrap options, in-sandbox wrappers."""
    tools = _tools()
    disk = str(limits.disk_mb << 20)
    command = [bwrap, *(_ROOT_OPTIONS if as_root else _USER_OPTIONS),
               "--info-fd", str(info_fd), *_layout_before_tmp(),
               "--perms", "0777", "--size", disk, "--tmpfs", SANDBOX_HOME,
               *_layout_after_tmp(),
               "--perms", "0777", "--size", disk, "--tmpfs", "/dev/shm",
               *file_args, "--chdir", SANDBOX_HOME, "--clearenv"]
    for name, value in environment(SANDBOX_HOME).items():
        command += ["--setenv", name, value]
    command.append("--")
    if as_root:
        # Two steps: become nobody in the host's user namespace (setgroups, setgid,
        # setuid: every capability goes), then enter a user namespace of its own, whose
        # task count RLIMIT_NPROC then bounds. (setpriv would do the first step, at
        # 1.5 ms more per program.)
        command += [tools.unshare, f"--setgid={NOBODY}", f"--setuid={NOBODY}", "--",
                    tools.unshare, "--user", "--"]
    command += [tools.prlimit, f"--nproc={limits.processes}"]
    command += [f"{PRLIMIT_FLAGS[which]}={soft}:{hard}" for which, soft, hard in rlimits(limits)]
    return [*command, "--", *argv]


_COMMON_OPTIONS = ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                   "--hostname", "sandbox", "--die-with-parent", "--new-session")
# Root: bubblewrap would keep every capability; keep only what unshare needs to drop to
# nobody (setresuid clears the rest; the program's own user namespace then gives it a
# full bounding set that is meaningless outside that namespace).
_ROOT_OPTIONS = (*_COMMON_OPTIONS, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID",
                 "--cap-add", "CAP_SETGID")
_USER_OPTIONS = (*_COMMON_OPTIONS, "--unshare-user", "--disable-userns")


@dataclass(frozen=True, slots=True)
class _Tools:
    unshare: str
    prlimit: str


@functools.cache
def _tools() -> _Tools:
    # Absolute host paths under /usr (or /bin) are the same inside the sandbox.
    found = [shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin") or name
             for name in ("unshare", "prlimit")]
    return _Tools(*found)


@functools.cache
def _layout_before_tmp() -> tuple[str, ...]:
    """System directories, read-only, and a fresh /proc and /dev; computed once."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    for path in ("/etc/ld.so.cache", "/etc/alternatives"):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    return tuple(args)


@functools.cache
def _layout_after_tmp() -> tuple[str, ...]:
    """The current interpreter's installation and virtual environment, read-only.

    Only these directories are bound, not their parents: an interpreter under
    ``/root/.pyenv`` makes ``/root/.pyenv/versions/X`` visible and nothing else of
    ``/root``. Missing parents are created world-readable (bubblewrap's default is 0700,
    which nobody could traverse).
    """
    covered = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
    candidates = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                 sys.base_exec_prefix)}
    candidates.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    candidates.add(os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))))
    roots: list[str] = []
    for path in sorted(candidates, key=len):
        if path == "/" or not os.path.isdir(path):
            continue
        if any(path == r or path.startswith(r + "/") for r in (*covered, *roots)):
            continue
        roots.append(path)
    args: list[str] = []
    made = {"/", SANDBOX_HOME}
    for root in roots:
        parents = []
        parent = posixpath.dirname(root)
        while parent not in made:
            parents.append(parent)
            parent = posixpath.dirname(parent)
        for directory in reversed(parents):
            args += ["--perms", "0755", "--dir", directory]
            made.add(directory)
        args += ["--ro-bind", root, root]
        made.add(root)
    return tuple(args)


@functools.cache
def probe(bwrap: str, as_root: bool, limits: Limits) -> str:
    """Run ``true`` the way programs will run; return "" or what is wrong and the fix.

    Cached per process: each distinct ``(bwrap, as_root, limits)`` is probed once.
    """
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True,
                                 timeout=10, check=False).stdout.split()[-1]
        parsed = tuple(int(part) for part in version.split(".")[:2])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return f"bubblewrap at {bwrap} does not run ({exc}). Reinstall it ({INSTALL}) {UNSAFE_HINT}."
    if parsed < _MIN_BWRAP:
        return (f"bubblewrap {version} at {bwrap} is too old: version 0.8 or newer is needed "
                f"to bound the sandbox's tmpfs. Upgrade it {UNSAFE_HINT}.")
    info_r, info_w = os.pipe()
    try:
        command = bwrap_command(bwrap, as_root, limits, info_w, [], ["true"])
        done = subprocess.run(command, capture_output=True, pass_fds=(info_w,), env={},
                              timeout=30, check=False, start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap at {bwrap} failed to start a probe program ({exc}) {UNSAFE_HINT}."
    finally:
        os.close(info_r)
        os.close(info_w)
    if done.returncode == 0:
        return ""
    said = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
    return (f"bubblewrap is installed ({bwrap}) but cannot build a sandbox here: {said}. "
            "User namespaces are probably disabled: enable them (sysctl -w "
            "kernel.unprivileged_userns_clone=1 on Debian, sysctl -w user.max_user_namespaces="
            "15000, or on Ubuntu 24.04 sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; "
            "in a container, allow unshare/clone of namespaces), install util-linux (unshare, "
            f"prlimit) if missing, {UNSAFE_HINT}.")
