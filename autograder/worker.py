"""The child process of the ``spawn`` sandbox mode: ``python -m autograder.worker SCRATCH``.

It reads the job that ``sandbox._run_spawned`` saved in SCRATCH, limits its own
memory, runs the job and saves the result there. Its exit code tells the parent
what happened (see ``sandbox.EXIT_*``).
"""

import importlib
import os
import sys

from . import codec, sandbox


def main(scratch):
    spec = codec.load(scratch, "job")
    sandbox._limit_memory(int(spec["memory_mb"]))
    module = importlib.import_module(spec["module"])
    func = module
    for part in spec["name"].split("."):
        func = getattr(func, part)
    os.chdir(scratch)
    return sandbox.child_execute(sandbox.Job(func, spec["payload"]), scratch)


if __name__ == "__main__":
    sys.stdin = open(os.devnull)
    os._exit(main(sys.argv[1]))
