"""Run untrusted code in a child process, with limits, and bring back only data.

``run(job, limits)`` calls ``job.func(job.payload)`` in a child process whose
working folder is a fresh scratch folder, whose address space is capped
(RLIMIT_AS, where the OS supports it), whose stdout and stderr go to a pipe the
parent reads (and cuts off when it floods), and which is killed with SIGKILL
(which no handler can catch or ignore) when the time is up. The return value
crosses back through ``codec`` (JSON + ``.npz`` with ``allow_pickle=False``).

How the child is made:
- ``fork`` (Linux, the default there): the child is a copy of this process, so
  it starts in milliseconds and can call a live function (``check(fn)`` in a
  notebook).
- ``spawn`` (other systems, or ``AUTOGRADER_SANDBOX=spawn``): a fresh
  ``python -m autograder.worker``; the job must then be plain data naming an
  importable function.
- ``inprocess`` (``check`` where fork is unavailable): no isolation, only a
  best-effort time limit; never used for the CLI.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from . import codec

EXIT_OK = 0
EXIT_OUT_OF_MEMORY = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 5

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env():
    """This process's environment, with the project first on PYTHONPATH: what a fresh
    interpreter needs to import ``autograder`` and ``solutions``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
    return env


@dataclass
class Limits:
    """Per-exercise limits. Defaults: 10 s, 2 GiB of extra memory, 1 MB of output."""

    timeout: float = 10.0
    memory_mb: int = 2048
    max_output: int = 1_000_000


@dataclass
class Job:
    """``func(payload)`` to run in the child; ``func`` must be a module-level function."""

    func: Callable[[Any], Any]
    payload: Any


@dataclass
class Outcome:
    """What happened in the child.

    status: "ok" (``value`` holds what the function returned), "timeout",
    "out_of_memory", "crashed" (killed by a signal such as SIGSEGV), "exited"
    (the process ended before returning), "flood" (too much output) or
    "internal" (the harness itself failed; ``message`` says how).
    """

    status: str
    value: Any = None
    output: str = ""
    message: str = ""
    seconds: float = 0.0


def default_mode():
    mode = os.environ.get("AUTOGRADER_SANDBOX", "").strip().lower()
    if mode in ("fork", "spawn", "inprocess"):
        return mode
    return "fork" if sys.platform.startswith("linux") else "spawn"


def run(job: Job, limits: Limits | None = None, mode: str | None = None) -> Outcome:
    limits = limits or Limits()
    mode = mode or default_mode()
    if mode == "inprocess":
        return _run_inprocess(job, limits)
    scratch = tempfile.mkdtemp(prefix="autograder-")
    try:
        if mode == "fork":
            return _run_forked(job, limits, scratch)
        return _run_spawned(job, limits, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------- child side

def _current_address_space():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_memory(memory_mb):
    try:
        import resource
    except ImportError:           # Windows
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not memory_mb or memory_mb <= 0:        # no cap (a CUDA context reserves terabytes)
        return
    cap = _current_address_space() + memory_mb * 2**20
    with contextlib.suppress(ValueError, OSError):   # macOS does not enforce RLIMIT_AS
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _plain_std_streams():
    """Point sys.stdout/err at file descriptors 1 and 2 (a notebook kernel replaces them)."""
    sys.stdin = open(os.devnull)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True,
                                  errors="replace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True,
                                  errors="replace")


def child_execute(job: Job, scratch: str):
    """Run the job and save its value; returns the exit code. Used by fork and by the worker."""
    try:
        value = job.func(job.payload)
        codec.save(value, scratch, "result")
        return EXIT_OK
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException:         # the harness failed: say how on stderr
        with contextlib.suppress(BaseException):
            traceback.print_exc()
        return EXIT_INTERNAL
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()


def _child_after_fork(job, limits, scratch, write_fd, read_fd):
    code = EXIT_INTERNAL
    try:
        os.setpgid(0, 0)
        os.close(read_fd)
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        _plain_std_streams()
        faulthandler.enable(sys.stderr)      # a crash's Python traceback goes into the output
        os.chdir(scratch)
        _limit_memory(limits.memory_mb)
        code = child_execute(job, scratch)
    finally:
        os._exit(code)


# --------------------------------------------------------------------------- parent side

class _OutputReader:
    """Keeps the first ``limit`` bytes a child writes and counts the rest."""

    def __init__(self, limit):
        self.limit = limit
        self.chunks = []
        self.kept = 0
        self.total = 0

    def feed(self, data):
        self.total += len(data)
        if self.kept < self.limit:
            piece = data[: self.limit - self.kept]
            self.chunks.append(piece)
            self.kept += len(piece)

    @property
    def flooded(self):
        return self.total > self.limit

    def text(self):
        return b"".join(self.chunks).decode("utf-8", errors="replace")


def _kill_group(pid):
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, OSError):
        os.kill(pid, signal.SIGKILL)


def _watch(fd, pid, poll_exit, limits, start):
    """Read the child's output until it exits, floods or runs out of time.

    Returns ("exited", wait_status) | ("timeout", None) | ("flood", None), and the reader.
    """
    reader = _OutputReader(limits.max_output)
    deadline = start + limits.timeout
    fd_open = True
    while True:
        status = poll_exit()
        if status is not None:
            if fd_open:
                _drain(fd, reader)
            return ("exited", status), reader
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill_group(pid)
            return ("timeout", None), reader
        if not fd_open:
            time.sleep(min(remaining, 0.005))
            continue
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.05))
        if ready:
            data = os.read(fd, 1 << 16)
            if data:
                reader.feed(data)
                if reader.flooded:
                    _kill_group(pid)
                    return ("flood", None), reader
            else:
                fd_open = False


def _drain(fd, reader):
    os.set_blocking(fd, False)
    while not reader.flooded:
        try:
            data = os.read(fd, 1 << 16)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        reader.feed(data)


def _interpret(kind, wait_status, reader, scratch, limits, seconds, returncode=None):
    output = reader.text()
    if kind == "timeout":
        return Outcome("timeout", output=output, seconds=seconds,
                       message=f"stopped after the {limits.timeout:g} s time limit "
                               "(an endless loop, or far too slow)")
    if kind == "flood":
        return Outcome("flood", output=output, seconds=seconds,
                       message=f"printed more than {limits.max_output // 1000} kB of output; "
                               "remove the print calls inside the exercise")
    if returncode is None:
        if os.WIFSIGNALED(wait_status):
            returncode = -os.WTERMSIG(wait_status)
        else:
            returncode = os.WEXITSTATUS(wait_status)
    if returncode == EXIT_OK:
        try:
            value = codec.load(scratch, "result")
        except FileNotFoundError:
            return Outcome("exited", output=output, seconds=seconds,
                           message="the process ended (exit code 0) before returning a result: "
                                   "do not call exit(), quit() or os._exit() in an exercise")
        except MemoryError:
            return Outcome("out_of_memory", output=output, seconds=seconds,
                           message="the result was too large to read back")
        return Outcome("ok", value=value, output=output, seconds=seconds)
    if returncode == EXIT_OUT_OF_MEMORY:
        return Outcome("out_of_memory", output=output, seconds=seconds,
                       message=f"ran out of memory (the limit is {limits.memory_mb} MB above "
                               "what the grader itself uses)")
    if returncode == EXIT_INTERRUPTED:
        return Outcome("exited", output=output, seconds=seconds,
                       message="the code raised KeyboardInterrupt")
    if returncode == EXIT_INTERNAL:
        return Outcome("internal", output=output, seconds=seconds,
                       message="the grader's child process failed:\n" + output[-2000:])
    if returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGKILL:
            return Outcome("out_of_memory", output=output, seconds=seconds,
                           message="the process was killed by the system (SIGKILL), "
                                   "most likely for using too much memory")
        if sig == signal.SIGXFSZ:
            return Outcome("crashed", output=output, seconds=seconds,
                           message="the process wrote a file larger than allowed (SIGXFSZ)")
        what = {"SIGSEGV": "a segmentation fault", "SIGBUS": "a bus error",
                "SIGABRT": "an abort", "SIGFPE": "a floating-point exception",
                "SIGILL": "an illegal instruction"}.get(name, "a signal")
        return Outcome("crashed", output=output, seconds=seconds,
                       message=f"the process crashed with {name} ({what})")
    return Outcome("exited", output=output, seconds=seconds,
                   message=f"the process ended (exit code {returncode}) before returning a "
                           "result: do not call exit(), quit() or os._exit() in an exercise")


def _run_forked(job, limits, scratch):
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:                                       # child: never returns
        _child_after_fork(job, limits, scratch, write_fd, read_fd)
    os.close(write_fd)
    with contextlib.suppress(OSError):                 # the child does this too; whoever is first
        os.setpgid(pid, pid)

    def poll_exit():
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:                     # someone else reaped it
            return 0
        return status if done else None

    try:
        (kind, wait_status), reader = _watch(read_fd, pid, poll_exit, limits, start)
    finally:                                           # also on KeyboardInterrupt in a notebook
        _kill_group(pid)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
        os.close(read_fd)
    return _interpret(kind, wait_status, reader, scratch, limits, time.monotonic() - start)


def _run_spawned(job, limits, scratch):
    codec.save({"module": job.func.__module__, "name": job.func.__qualname__,
                "memory_mb": limits.memory_mb, "payload": job.payload}, scratch, "job",
               python_scalars=True)            # the arguments as a forked child sees them
    env = child_env()
    env["PYTHONUNBUFFERED"] = "1"
    start = time.monotonic()
    popen_kw = {"start_new_session": True} if os.name == "posix" else {}
    proc = subprocess.Popen([sys.executable, "-m", "autograder.worker", scratch],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=scratch, env=env, **popen_kw)
    try:
        if os.name == "posix":
            (kind, _), reader = _watch(proc.stdout.fileno(), proc.pid, proc.poll, limits, start)
        else:                                          # no select() on pipes: simpler, coarser
            reader = _OutputReader(limits.max_output)
            try:
                out, _ = proc.communicate(timeout=limits.timeout)
                reader.feed(out)
                kind = "flood" if reader.flooded else "exited"
            except subprocess.TimeoutExpired:
                proc.kill()
                kind = "timeout"
    finally:
        if os.name == "posix":
            _kill_group(proc.pid)
        else:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    return _interpret(kind, None, reader, scratch, limits, time.monotonic() - start,
                      returncode=proc.returncode if kind == "exited" else None)


class Interrupted(BaseException):
    """Raised in the grader's own process when an in-process run hits its time limit."""


def _run_inprocess(job, limits):
    """No isolation: used only by ``check()`` where fork is unavailable."""
    buffer = io.StringIO()
    start = time.monotonic()
    use_alarm = hasattr(signal, "SIGALRM") and _is_main_thread()
    if use_alarm:
        def on_alarm(signum, frame):
            raise Interrupted()
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limits.timeout)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            value = codec.normalize(job.func(job.payload))
        status, message = "ok", ""
    except Interrupted:
        value, status = None, "timeout"
        message = f"stopped after the {limits.timeout:g} s time limit"
    except MemoryError:
        value, status, message = None, "out_of_memory", "ran out of memory"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    output = buffer.getvalue()
    if len(output) > limits.max_output:
        return Outcome("flood", output=output[: limits.max_output], seconds=time.monotonic() - start,
                       message=f"printed more than {limits.max_output // 1000} kB of output")
    return Outcome(status, value=value, output=output, message=message,
                   seconds=time.monotonic() - start)


def _is_main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()
