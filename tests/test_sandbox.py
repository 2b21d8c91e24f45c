"""Hostile programs against the sandbox: each is contained, classified, and leaves nothing.

Every hostile program carries a unique marker in its command line, so a finished test can
check from the host that no process of it is still running (a scan of /proc) and that
none of the files it tried to create outside its private directory exists.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_sandbox

from evals.errors import ConfigError
from evals.sandbox import (
    BwrapExecutor,
    ExecResult,
    Limits,
    SandboxUnavailable,
    UnsafeExecutor,
    make_executor,
)

ROOT = Path(__file__).resolve().parents[1]
REAL_HOME = Path(os.environ.get("HOME", "/root"))
FAST = Limits(wall_s=5.0, cpu_s=5.0)


def processes_with(marker: str) -> list[str]:
    """Command lines of live (non-zombie) host processes that mention ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            text = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry}: {text}")
    return found


def host_paths(marker: str) -> list[Path]:
    """Places outside the private directory a program might try to write to."""
    return [Path("/tmp", marker), ROOT / marker, REAL_HOME / marker, Path("/root", marker),
            Path("/etc", marker), Path("/var/tmp", marker), Path("/dev/shm", marker),
            Path.cwd() / marker]


@dataclass
class Sandbox:
    """A running executor plus the marker the current test's programs carry."""

    executor: BwrapExecutor
    marker: str

    def python(self, code: str, *args: str, limits: Limits = FAST, stdin: bytes = b"",
               files: dict[str, bytes] | None = None) -> ExecResult:
        argv = ["python", "-c", code, self.marker, *args]
        return asyncio.run(self.executor.run(argv, files=files or {}, stdin=stdin,
                                             limits=limits))


@pytest.fixture(scope="module")
def executor() -> BwrapExecutor:
    require_sandbox()
    found = make_executor()
    assert isinstance(found, BwrapExecutor)
    return found


@pytest.fixture
def sandbox(executor: BwrapExecutor) -> Iterator[Sandbox]:
    marker = f"evals-sbx-{uuid.uuid4().hex}"
    yield Sandbox(executor, marker)
    assert processes_with(marker) == [], "a sandboxed process outlived its run"
    leaked = [p for p in host_paths(marker) if p.exists()]
    for path in leaked:
        path.unlink()
    assert leaked == [], "a sandboxed program wrote outside its private directory"


# --- processes -----------------------------------------------------------------------

FORK_COUNTER = """
import os, time
n = 1
try:
    while n < 1000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, e.errno)
"""


def test_a_fork_bomb_hits_the_process_cap(sandbox: Sandbox) -> None:
    result = sandbox.python(FORK_COUNTER, limits=Limits(wall_s=5, processes=12))
    count, errno = result.stdout.split()
    assert int(count) <= 12 and errno == b"11", result  # EAGAIN
    assert result.returncode == 0 and result.wall_s < 4  # the sleepers died with it


def test_an_endless_fork_bomb_is_killed_at_the_wall_limit(sandbox: Sandbox) -> None:
    code = "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"
    result = sandbox.python(code, limits=Limits(wall_s=1.5, processes=16))
    assert (result.returncode, result.killed, result.timed_out) == (None, "wall", True)
    assert result.wall_s < 3


def test_a_user_namespace_inside_does_not_reset_the_process_cap(sandbox: Sandbox) -> None:
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print('unshare', libc.unshare(0x10000000))\n" + FORK_COUNTER)
    result = sandbox.python(code, limits=Limits(wall_s=5, processes=12))
    assert int(result.stdout.split()[-2]) <= 12, result


def test_threads_count_against_the_process_cap(sandbox: Sandbox) -> None:
    code = """
import threading, time
n = 0
try:
    while n < 200:
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        n += 1
except RuntimeError:
    pass
print(n, flush=True)
import os; os._exit(0)
"""
    result = sandbox.python(code, limits=Limits(wall_s=5, processes=10))
    assert 0 < int(result.stdout) < 10, result


def test_a_daemonized_grandchild_dies_with_the_program(sandbox: Sandbox) -> None:
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(60)
    os._exit(0)
time.sleep(0.2)
print("parent done")
"""
    result = sandbox.python(code, limits=Limits(wall_s=10))
    assert (result.returncode, result.stdout, result.killed) == (0, b"parent done\n", None)
    assert result.wall_s < 5


def test_killing_the_parent_process_reaches_nothing_outside(sandbox: Sandbox) -> None:
    # The parent is the namespace's init: signals from inside do not reach it (EPERM when
    # it runs as another user, ignored otherwise).
    code = ("import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
            "except OSError as e:\n    print('refused', e.errno)\nprint('alive', os.getppid())")
    result = sandbox.python(code)
    assert result.returncode == 0 and result.stdout.endswith(b"alive 1\n"), result


def test_kill_minus_one_reaches_only_the_sandbox(sandbox: Sandbox) -> None:
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        code = ("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\n"
                "except OSError as e:\n    print('nobody to kill', e.errno)\nprint('survived')")
        result = sandbox.python(code)
        assert result.returncode == 0 and result.stdout.endswith(b"survived\n"), result
        assert bystander.poll() is None, "kill(-1) from the sandbox reached a host process"
    finally:
        bystander.kill()
        bystander.wait()


def test_host_processes_are_invisible_and_cannot_be_traced(sandbox: Sandbox) -> None:
    code = """
import ctypes, os, sys
host_pid = int(sys.argv[2])
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
libc = ctypes.CDLL(None, use_errno=True)
traced = libc.ptrace(16, host_pid, None, None)  # PTRACE_ATTACH
try:
    environ = open(f'/proc/{host_pid}/environ', 'rb').read()
except OSError as e:
    environ = repr(e).encode()
print(pids, traced, ctypes.get_errno())
sys.stdout.flush()
os.write(1, environ)
"""
    result = sandbox.python(code, str(os.getpid()))
    first = result.stdout.split(b"\n", 1)[0].decode()
    assert first.startswith("[1, 2]") and " -1 " in first, result
    assert b"OPENAI" not in result.stdout and b"PATH=" not in result.stdout.split(b"\n", 1)[1]


# --- time, memory, files -------------------------------------------------------------


def test_an_infinite_loop_is_killed_at_the_wall_limit(sandbox: Sandbox) -> None:
    result = sandbox.python("while True: pass", limits=Limits(wall_s=1, cpu_s=30))
    assert (result.returncode, result.killed, result.timed_out) == (None, "wall", True)
    assert 1 <= result.wall_s < 2.5


def test_sleeping_past_the_wall_limit_is_killed(sandbox: Sandbox) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    result = sandbox.python(code, limits=Limits(wall_s=0.5))
    assert (result.returncode, result.killed, result.timed_out) == (None, "wall", True)
    assert result.wall_s < 2


def test_a_cpu_bound_program_is_stopped_by_the_cpu_limit(sandbox: Sandbox) -> None:
    result = sandbox.python("while True: pass", limits=Limits(wall_s=10, cpu_s=1))
    assert (result.returncode, result.killed, result.timed_out) == (-signal.SIGXCPU, "cpu", False)
    assert result.wall_s < 5


def test_a_memory_bomb_is_stopped_by_the_address_space_limit(sandbox: Sandbox) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))"
    result = sandbox.python(code, limits=Limits(memory_mb=256))
    assert (result.returncode, result.killed) == (1, "memory"), result
    assert b"MemoryError" in result.stderr


def test_deep_recursion_crashes_only_the_program(sandbox: Sandbox) -> None:
    # Python-to-Python calls no longer use the C stack (3.11); repr of nested lists does.
    code = "import sys\nx = []\nfor _ in range(10**6):\n    x = [x]\nsys.setrecursionlimit(10**8)\nrepr(x)"
    result = sandbox.python(code, limits=Limits(memory_mb=512))
    assert (result.returncode, result.killed) == (-signal.SIGSEGV, "signal 11"), result
    plain = sandbox.python("def f(n): return f(n + 1)\nf(0)")
    assert plain.returncode == 1 and b"RecursionError" in plain.stderr and plain.killed is None


def test_a_huge_file_write_hits_the_file_size_limit(sandbox: Sandbox) -> None:
    code = "with open('big', 'wb') as f:\n    f.write(bytes(64 << 20))"
    result = sandbox.python(code, limits=Limits(file_size_mb=4, memory_mb=512))
    assert (result.returncode, result.killed) == (1, "file_size"), result
    dd = asyncio.run(sandbox.executor.run(
        ["dd", "if=/dev/zero", "of=big", "bs=1M", "count=64", "status=none"],
        limits=Limits(file_size_mb=4)))
    assert (dd.returncode, dd.killed) == (-signal.SIGXFSZ, "file_size"), dd


def test_filling_the_private_disk_stops_at_its_size(sandbox: Sandbox) -> None:
    code = """
import os
written = 0
try:
    for i in range(100):
        with open(f'f{i}', 'wb') as f:
            f.write(bytes(2 << 20))
        written += 2
except OSError as e:
    print(written, e.errno)
"""
    result = sandbox.python(code, limits=Limits(disk_mb=8, file_size_mb=4))
    written, errno = result.stdout.split()
    assert int(written) <= 8 and errno == b"28", result  # ENOSPC


def test_opening_many_files_hits_the_descriptor_limit(sandbox: Sandbox) -> None:
    code = "files = []\nwhile True:\n    files.append(open('/dev/null'))"
    result = sandbox.python(code, limits=Limits(open_files=32))
    assert (result.returncode, result.killed) == (1, "open_files"), result


# --- output and descriptors ----------------------------------------------------------


def test_flooding_stdout_is_capped_and_killed(sandbox: Sandbox) -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"
    result = sandbox.python(code, limits=Limits(output_bytes=100_000, wall_s=10))
    assert (result.returncode, result.killed, result.output_truncated) == (None, "output", True)
    assert result.stdout == b"x" * 100_000 and result.wall_s < 5


def test_closing_and_redirecting_descriptors_does_not_hang_the_harness(sandbox: Sandbox) -> None:
    code = ("import os, sys\nfd = os.open('/dev/null', os.O_WRONLY)\nos.dup2(fd, 1)\n"
            "print('lost' * 1000)\nsys.stdout.flush()\nos.close(1)\nos.close(2)\nos.close(0)\n"
            "os._exit(3)")
    result = sandbox.python(code, stdin=b"ignored" * 100_000)
    assert (result.returncode, result.stdout, result.stderr) == (3, b"", b""), result


def test_a_large_stdin_the_program_ignores_does_not_block(sandbox: Sandbox) -> None:
    result = sandbox.python("print('no read')", stdin=b"y" * (8 << 20))
    assert result.returncode == 0 and result.stdout == b"no read\n", result


# --- secrets, network, file system ---------------------------------------------------


def test_the_api_key_in_the_environment_is_invisible(sandbox: Sandbox,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    code = ("import os\nprint(sorted(os.environ))\n"
            "for p in ('/proc/self/environ', '/proc/1/environ'):\n"
            "    try: print(open(p, 'rb').read())\n    except OSError as e: print(e)")
    result = sandbox.python(code)
    assert result.returncode == 0, result
    assert b"sk-test-secret" not in result.stdout and b"OPENAI" not in result.stdout


def test_files_in_the_users_home_are_invisible(sandbox: Sandbox, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine api password sk-home-secret")
    monkeypatch.setenv("HOME", str(home))
    code = """
import os, sys
for path in (sys.argv[2], '/root/.bashrc', '/root/.ssh', sys.argv[3]):
    try:
        print(path, open(path).read())
    except OSError as e:
        print(path, type(e).__name__)
print(os.listdir('/root'), sorted(os.listdir(sys.argv[4])) if os.path.exists(sys.argv[4])
      else None)
"""
    result = sandbox.python(code, str(home / ".netrc"), str(ROOT / "pyproject.toml"),
                            str(ROOT))
    assert b"sk-home-secret" not in result.stdout and b"[project]" not in result.stdout, result
    # The repository is invisible, except the interpreter's own environment when it lives
    # inside it (CI's `.venv`), which is bound read-only and alone.
    prefix = Path(sys.prefix).resolve()
    inside = prefix.is_relative_to(ROOT.resolve())
    repo_view = repr([prefix.relative_to(ROOT.resolve()).parts[0]] if inside else None)
    last = result.stdout.rstrip().splitlines()[-1].decode()
    assert last in (f"['.pyenv'] {repo_view}", f"[] {repo_view}"), result


def test_writes_outside_the_private_directory_do_not_reach_the_host(sandbox: Sandbox) -> None:
    targets = [str(p) for p in host_paths(sandbox.marker)] + [f"/usr/{sandbox.marker}"]
    code = """
import os, sys
for path in sys.argv[2:]:
    try:
        with open(path, 'w') as f:
            f.write('escaped')
        print('wrote', path)
    except OSError as e:
        print('refused', path, e.errno)
for call in (lambda: os.setuid(0), lambda: os.chroot('/')):
    try:
        call()
        print('privileged')
    except OSError as e:
        print('unprivileged', e.errno)
"""
    result = sandbox.python(code, *targets)
    assert result.returncode == 0 and b"privileged\n" not in result.stdout.replace(
        b"unprivileged", b""), result
    # /tmp is the private tmpfs, so writing there works inside and never reaches the host.
    assert f"wrote /tmp/{sandbox.marker}".encode() in result.stdout


def test_a_tcp_connection_to_a_host_listener_fails(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = ("import socket, sys\ntry:\n    socket.create_connection(('127.0.0.1', "
                "int(sys.argv[2])), timeout=2)\n    print('connected')\n"
                "except OSError as e:\n    print('failed', type(e).__name__)")
        result = sandbox.python(code, str(port))
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert result.stdout.startswith(b"failed"), result


def test_a_connection_to_a_public_address_fails(sandbox: Sandbox) -> None:
    code = ("import socket\ntry:\n    socket.create_connection(('8.8.8.8', 53), timeout=2)\n"
            "    print('connected')\nexcept OSError as e:\n    print('failed', e.errno)\n"
            "try:\n    socket.getaddrinfo('example.com', 80)\n    print('resolved')\n"
            "except OSError as e:\n    print('no dns')")
    result = sandbox.python(code)
    assert result.stdout.startswith(b"failed 101\n") and b"no dns" in result.stdout, result


# --- the harness keeps working -------------------------------------------------------


def test_a_killed_harness_takes_its_sandboxes_down(sandbox: Sandbox) -> None:
    harness = ("import asyncio, sys\nfrom evals.sandbox import BwrapExecutor\n"
               "asyncio.run(BwrapExecutor().run(['python', '-c', "
               "'print(1, flush=True); import time; time.sleep(60)', sys.argv[1]]))")
    proc = subprocess.Popen([sys.executable, "-c", harness, sandbox.marker], cwd=ROOT)
    try:
        deadline = time.monotonic() + 10
        while len(processes_with(sandbox.marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the harness and its sandboxed program
        assert len(processes_with(sandbox.marker)) >= 2
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5  # the parent-death signal is delivered asynchronously
    while processes_with(sandbox.marker) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_programs_beyond_max_parallel_wait_their_turn(sandbox: Sandbox) -> None:
    async def four() -> float:
        ex = BwrapExecutor(max_parallel=2)
        start = time.perf_counter()
        code = "import time; time.sleep(0.6)"
        results = await asyncio.gather(*(ex.run(["python", "-c", code, sandbox.marker])
                                         for _ in range(4)))
        assert all(r.returncode == 0 for r in results)
        return time.perf_counter() - start

    assert asyncio.run(four()) >= 1.2


def test_aclose_kills_programs_in_flight(sandbox: Sandbox) -> None:
    async def close_early() -> ExecResult:
        ex = BwrapExecutor()
        task = asyncio.create_task(ex.run(["python", "-c", "import time; time.sleep(30)",
                                           sandbox.marker]))
        await asyncio.sleep(0.5)
        await ex.aclose()
        result = await task
        with pytest.raises(RuntimeError, match="closed"):
            await ex.run(["true"])
        return result

    result = asyncio.run(close_early())
    assert (result.returncode, result.killed) == (None, "closed") and result.wall_s < 5


def test_a_cancelled_run_kills_its_program(sandbox: Sandbox) -> None:
    async def give_up() -> None:
        code = "import time; time.sleep(30)"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sandbox.executor.run(["python", "-c", code, sandbox.marker]),
                                   timeout=0.5)

    asyncio.run(give_up())


def test_a_normal_program_still_runs_correctly_after_the_hostile_ones(sandbox: Sandbox) -> None:
    files = {"main.py": b"import sys, json\nfrom lib.util import double\n"
                        b"print(json.dumps([double(int(x)) for x in sys.stdin.read().split()]))",
             "lib/__init__.py": b"", "lib/util.py": b"def double(x):\n    return 2 * x\n"}
    result = asyncio.run(sandbox.executor.run(["python", "main.py", sandbox.marker],
                                              files=files, stdin=b"1 2 3"))
    assert result == ExecResult(0, b"[2, 4, 6]\n", b"", result.wall_s, False, None, False)


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape.py", "a/../../b", "", "."])
def test_file_paths_must_stay_inside_the_working_directory(executor: BwrapExecutor,
                                                           path: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        asyncio.run(executor.run(["true"], files={path: b""}))


# --- UnsafeExecutor ------------------------------------------------------------------


def test_unsafe_executor_has_an_empty_environment_and_a_private_cwd(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    code = "import os\nprint(os.getcwd())\nprint(sorted(os.environ))\nprint(open('in.txt').read())"
    result = asyncio.run(UnsafeExecutor().run(["python", "-c", code],
                                              files={"in.txt": b"hello"}))
    cwd, names, content = result.stdout.decode().splitlines()
    assert "OPENAI" not in names and content == "hello" and result.returncode == 0
    assert not Path(cwd).exists(), "the private directory was not removed"


def test_unsafe_executor_kills_the_whole_group_at_the_wall_limit() -> None:
    marker = f"evals-unsafe-{uuid.uuid4().hex}"
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]])\n"
            "time.sleep(60)")
    result = asyncio.run(UnsafeExecutor().run(["python", "-c", code, marker],
                                              limits=Limits(wall_s=1)))
    assert (result.returncode, result.killed, result.timed_out) == (None, "wall", True)
    assert processes_with(marker) == []


def test_unsafe_executor_caps_output() -> None:
    result = asyncio.run(UnsafeExecutor().run(
        ["python", "-c", "print('y' * 10**6)"], limits=Limits(output_bytes=1000)))
    assert (result.killed, result.output_truncated, len(result.stdout)) == ("output", True, 1000)


# --- choosing an executor ------------------------------------------------------------


def test_missing_bwrap_names_both_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("EVALS_BWRAP", raising=False)
    with pytest.raises(SandboxUnavailable) as caught:
        make_executor()
    assert isinstance(caught.value, ConfigError)
    assert "apt-get install -y bubblewrap" in str(caught.value)
    assert "--unsafe-no-sandbox" in str(caught.value)
    assert isinstance(make_executor(unsafe=True), UnsafeExecutor)


def test_disabled_user_namespaces_are_explained(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'bubblewrap 0.8.0' && exit 0\n"
                    "echo 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("EVALS_BWRAP", raising=False)
    with pytest.raises(SandboxUnavailable, match="User namespaces") as caught:
        make_executor()
    assert "No permissions to creating new namespace" in str(caught.value)
    assert "--unsafe-no-sandbox" in str(caught.value)


def test_make_executor_returns_a_working_sandbox(executor: BwrapExecutor) -> None:
    assert make_executor(max_parallel=3).max_parallel == 3  # type: ignore[attr-defined]

