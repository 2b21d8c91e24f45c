"""Runs every test of one attempt; see evals.grading.code for the protocol."""
import json
import os
import signal
import sys
import time

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
_CHUNK = 1 << 16


def stripped_lines(text):
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line):
    from decimal import Decimal
    try:
        return [Decimal(token) for token in line.split()]
    except (ArithmeticError, ValueError):
        return None


def compare_stdout(got, expected):
    """None when ``got`` matches ``expected`` (LiveCodeBench's rule), else why not."""
    mine, gold = stripped_lines(got), stripped_lines(expected)
    if len(mine) != len(gold):
        return "%d output lines, expected %d" % (len(mine), len(gold))
    for number, (a, b) in enumerate(zip(mine, gold), 1):
        if a == b:
            continue
        da, db = _decimals(a), _decimals(b)
        try:
            if da is not None and db is not None and da == db:
                continue
        except ArithmeticError:  # signalling NaN
            pass
        return "line %d: got %r, expected %r" % (number, a[:80], b[:80])
    return None


def shorten(text, size=200):
    text = text if isinstance(text, str) else repr(text)
    if len(text) <= size:
        return text
    return text[: size // 2] + " ...(%d chars)... " % len(text) + text[-size // 2:]


def _prctl(option, value):
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


def _children():
    me, found = os.getpid(), []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()
            if len(fields) > 1 and int(fields[1]) == me:
                found.append(int(name))
    return found


def kill_descendants(keep=None):
    """Kill whatever the last test left behind (orphans are re-parented to us), except
    the process ``keep`` (the zygote)."""
    for _ in range(50):
        kids = [pid for pid in _children() if pid != keep]
        if not kids:
            return
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def _cpu_of(pid, ticks):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks


class Zygote:
    """A process forked before the tests are read, with the preamble's modules imported,
    that forks one child per test: a test starts in about a millisecond instead of an
    interpreter's start-up, and no child can find the expected outputs in its memory
    (the zygote never had them). Its children's statuses come back over a socket."""

    def __init__(self):
        import socket
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            self.sock.close()
            try:
                zygote_main(theirs)
            finally:
                os._exit(0)
        theirs.close()
        self.alive = True

    def start(self, args, fds):
        """Fork a child on ``fds`` (its stdin, stdout, stderr); its pid, or None."""
        import socket
        try:
            socket.send_fds(self.sock, [json.dumps(args).encode()], fds)
            self.sock.settimeout(10)
            reply = self.sock.recv(4096)
        except OSError:
            reply = b""
        if not reply:
            self.alive = False
            return None
        return json.loads(reply)["pid"]

    def status(self, pid, block):
        """(wait status, CPU seconds) of the child once it has ended, else None."""
        try:
            self.sock.settimeout(10 if block else 0)
            reply = self.sock.recv(4096)
        except (BlockingIOError, TimeoutError):
            if not block:
                return None
            reply = b""
        except OSError:
            reply = b""
        if reply:
            record = json.loads(reply)
            return record["status"], record["cpu"]
        # The zygote is gone (the program killed its parent): the child, re-parented to
        # us (the subreaper), is ended and reaped here.
        self.alive = False
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        for _ in range(200):
            try:
                got, status, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                time.sleep(0.005)
                continue
            if got:
                return status, usage.ru_utime + usage.ru_stime
            time.sleep(0.005)
        return signal.SIGKILL, 0.0


def zygote_main(sock):
    """The zygote: import what programs import, then fork a child per request."""
    import socket
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    for name in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy",
                 "math", "random", "statistics", "itertools", "functools", "operator", "io",
                 "typing", "decimal", "fractions", "resource", "types", "traceback"):
        try:
            __import__(name)
        except ImportError:
            pass
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        except OSError:
            return
        if not message:
            return
        args = json.loads(message)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setsid()
                for number, fd in enumerate(fds):
                    os.dup2(fd, number)
                os.closerange(3, 4096)
                code = child_main(args["mode"], args["limit"], args["fn_name"], args["paths"])
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        try:
            sock.send(json.dumps({"pid": pid}).encode())
            _, status, usage = os.wait4(pid, 0)
            sock.send(json.dumps({"status": status,
                                  "cpu": usage.ru_utime + usage.ru_stime}).encode())
        except OSError:
            return


def run_test(zygote, args, data, limit, wall, out_cap, err_cap):
    """Run one test in a child of the zygote; its status, CPU, wall time and output."""
    import selectors
    ticks = os.sysconf("SC_CLK_TCK")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = zygote.start(args, [in_r, out_w, err_w])
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    if pid is None:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        return {"status": signal.SIGKILL, "cpu": 0.0, "wall": 0.0, "killed": None,
                "out": b"", "err": b"the test harness could not start the program",
                "harness_lost": True}
    deadline = started + wall
    sel = selectors.DefaultSelector()
    out, err = bytearray(), bytearray()
    view = memoryview(data)
    for fd in (in_w, out_r, err_r):
        os.set_blocking(fd, False)
    sel.register(out_r, selectors.EVENT_READ, out)
    sel.register(err_r, selectors.EVENT_READ, err)
    sel.register(zygote.sock, selectors.EVENT_READ, "status")  # wakes us when it ends
    reading = {out_r, err_r}
    if view:
        sel.register(in_w, selectors.EVENT_WRITE, None)
    else:
        os.close(in_w)
        in_w = None
    ended = killed = None
    exited_at = None
    while True:
        now = time.monotonic()
        if ended is None:
            ended = zygote.status(pid, block=False)
            if ended is not None:
                exited_at = now
                sel.unregister(zygote.sock)
        if ended is not None and (not reading or now - exited_at > 0.5):
            break
        if ended is None and now >= deadline:
            killed = "wall"
            break
        if ended is None and _cpu_of(pid, ticks) > limit:
            killed = "cpu"
            break
        for key, _ in sel.select(timeout=max(0.0, min(0.05, deadline - now))):
            if key.data == "status":
                continue  # read at the top of the loop
            if key.data is None:
                try:
                    sent = os.write(key.fd, view[:_CHUNK])
                    view = view[sent:]
                except BlockingIOError:
                    continue
                except OSError:
                    view = view[:0]
                if not view:
                    sel.unregister(key.fd)
                    os.close(key.fd)
                    in_w = None
                continue
            try:
                chunk = os.read(key.fd, _CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fd)
                reading.discard(key.fd)
                continue
            buf = key.data
            cap = out_cap if buf is out else err_cap
            if buf is err and len(buf) + len(chunk) > cap:
                del buf[: len(buf) + len(chunk) - cap]  # keep the tail of stderr
            buf += chunk
            if buf is out and len(buf) > cap:
                killed = "output"
        if killed == "output":
            break
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass
    if ended is None:
        ended = zygote.status(pid, block=True)
    for fd in (in_w, out_r, err_r):
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    sel.close()
    kill_descendants(keep=zygote.pid)
    lost = not zygote.alive
    if lost:
        err += b"\n(the program killed its parent, the test harness)"
    return {"status": ended[0], "cpu": ended[1], "wall": time.monotonic() - started,
            "killed": killed, "out": bytes(out), "err": bytes(err), "harness_lost": lost}


_MEMORY = ("MemoryError", "Cannot allocate memory", "out of memory")


def judge(spec, test, res, limit, token):
    """The verdict of one finished test: None (passed) or a failure record."""
    status, err = res["status"], res["err"].decode("utf-8", "replace")
    tail = "\n".join(err.rstrip().split("\n")[-12:])
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    if res["killed"] == "wall":
        return {"verdict": "time limit", "limit_kind": "wall"}
    if res["killed"] == "cpu" or res["cpu"] > limit or sig == signal.SIGXCPU or (
            sig == signal.SIGKILL and res["cpu"] >= limit - 0.05):
        return {"verdict": "time limit", "limit_kind": "cpu"}
    if res["killed"] == "output":
        return {"verdict": "wrong answer", "detail": "output exceeds %d bytes" % len(res["out"])}
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    if code != 0:
        last = err.rstrip().split("\n")[-1] if err.strip() else ""
        if any(word in last for word in _MEMORY):
            return {"verdict": "memory limit", "error": tail}
        if spec["mode"] == "humaneval" and last.startswith("AssertionError"):
            return {"verdict": "wrong answer", "detail": "an assertion of check() failed",
                    "error": tail}
        why = "signal %d" % sig if sig is not None else "exit status %s" % code
        return {"verdict": "runtime error", "error": tail or why, "exit": why}
    got = res["out"].decode("utf-8", "replace")
    mode = spec["mode"]
    if mode == "humaneval":
        if got.strip() != token:
            return {"verdict": "runtime error", "exit": "exit status 0",
                    "error": (tail + "\n" if tail else "")
                    + "the program exited before check() finished"}
        return None
    if mode == "stdin":
        why = compare_stdout(got, test["output"])
        if why is None:
            return None
        return {"verdict": "wrong answer", "detail": why, "expected": shorten(test["output"]),
                "got": shorten(got)}
    try:
        value = json.loads(got)
    except ValueError:
        return {"verdict": "runtime error", "error": tail or "no result was returned"}
    expected = json.loads(test["output"])
    if value == expected:
        return None
    return {"verdict": "wrong answer", "expected": shorten(test["output"]),
            "got": shorten(json.dumps(value))}


def main():
    # Before anything secret exists in this process: the nonce and the expected outputs.
    zygote = Zygote()
    nonce = sys.stdin.buffer.read().decode().strip()
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    with open("tests.json", "rb") as f:
        spec = json.loads(f.read())
    os.unlink("tests.json")

    def emit(record):
        sys.stdout.write(nonce + " " + json.dumps(record) + "\n")
        sys.stdout.flush()

    with open("solution.py", "rb") as f:
        source = f.read()
    try:
        compile(source, "solution.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        emit({"done": True, "verdict": "syntax error", "passed": 0,
              "error": "%s: %s" % (type(exc).__name__, exc)})
        return
    tests, limit = spec["tests"], spec["limit"]
    wall = 2 * limit + 1
    overall = time.monotonic() + spec["overall"]
    # -S skips site's .pth processing (30 ms per test); the site-packages directories are
    # added back by the child, so installed libraries (numpy, ...) stay importable.
    import site
    paths = os.pathsep.join(p for p in site.getsitepackages() if os.path.isdir(p))
    args = {"mode": spec["mode"], "limit": limit, "fn_name": spec.get("fn_name") or "",
            "paths": paths}
    cpu, walls = [], []
    for number, test in enumerate(tests, 1):
        if time.monotonic() > overall:
            emit({"done": True, "verdict": "time limit", "limit_kind": "overall",
                  "test": number, "passed": number - 1, "cpu_s": cpu, "wall_s": walls})
            return
        emit({"start": number})
        token = os.urandom(16).hex() if spec["mode"] == "humaneval" else ""
        data = (token + "\n" if token else test["input"]).encode()
        cap = 2 * len(test["output"].encode()) + (1 << 20)
        res = run_test(zygote, args, data, limit, wall, cap, 1 << 16)
        cpu.append(round(res["cpu"], 4))
        walls.append(round(res["wall"], 4))
        failure = judge(spec, test, res, limit, token)
        if res["harness_lost"]:  # whatever it printed, it broke the harness
            failure = {"verdict": "runtime error", "exit": "killed the test harness",
                       "error": res["err"].decode("utf-8", "replace")[-2000:]}
        if failure is not None:
            failure.update(done=True, test=number, passed=number - 1, cpu_s=cpu, wall_s=walls)
            emit(failure)
            return
    emit({"done": True, "verdict": "passed", "passed": len(tests), "cpu_s": cpu,
          "wall_s": walls})


# -- the child: runs the program on one test ------------------------------------------


def _plain(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_plain(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            scalar = item()
        except Exception:
            scalar = None
        if isinstance(scalar, (bool, int, float)):
            return scalar
    return {"__object__": type(value).__name__, "repr": repr(value)[:200]}


def child(mode, limit, fn_name, paths):
    import math
    import resource
    sys.path.extend(p for p in paths.split(os.pathsep) if p)
    soft = int(math.ceil(float(limit))) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1 if hard == resource.RLIM_INFINITY
                                             else min(soft + 1, hard)))
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(50000)
    with open("solution.py", "rb") as f:
        source = f.read().decode("utf-8", "replace")
    namespace = {"__name__": "__main__", "__builtins__": __builtins__,
                 "__file__": "solution.py"}
    if mode != "humaneval":
        with open("preamble.py", "rb") as f:
            exec(compile(f.read(), "preamble.py", "exec"), namespace)
    code = compile(source, "solution.py", "exec", dont_inherit=True)
    if mode == "stdin":
        try:
            exec(code, namespace)
        except SystemExit:
            pass
        sys.stdout.flush()
        return
    data = sys.stdin.read()
    channel = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # the program's prints go nowhere; the result has its own channel
    if mode == "humaneval":
        exec(code, namespace)
        channel.write(data.strip())
        channel.flush()
        os._exit(0)
    args = [json.loads(line) for line in data.split("\n")]
    exec(code, namespace)
    if "class Solution" in source:
        target = namespace["Solution"]()
    else:
        import types
        target = types.SimpleNamespace(**namespace)
    method = getattr(target, fn_name)
    result = method(*args)
    if isinstance(result, tuple):
        result = list(result)
    channel.write(json.dumps(_plain(result)))
    channel.flush()
    os._exit(0)


def child_main(mode, limit, fn_name, paths):
    """Run ``child`` in a forked process; the exit status it should end with."""
    try:
        child(mode, limit, fn_name, paths)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            sys.stderr.write("%s\n" % (code,))
            code = 1
    except BaseException as exc:  # show the program's frames, not the bootstrap's
        import traceback
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        code = 1
    else:
        code = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    return code & 0xFF


if __name__ == "__main__":
    main()
