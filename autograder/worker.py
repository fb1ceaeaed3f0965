"""The child process of the ``spawn`` sandbox mode: ``python -m autograder.worker SCRATCH``.

It reads the job that ``sandbox._run_spawned`` saved in SCRATCH, limits its own
memory, runs the job and saves the result there. Its exit code tells the parent
what happened (see ``sandbox.EXIT_*``).
"""

import faulthandler
import importlib
import os
import sys
import traceback

from . import codec, sandbox


def main(scratch):
    try:
        spec = codec.load(scratch, "job")
        sandbox._limit_memory(int(spec["memory_mb"]))
        func = importlib.import_module(spec["module"])
        for part in spec["name"].split("."):
            func = getattr(func, part)
    except Exception:             # the job itself is unusable: say why, as the harness's failure
        traceback.print_exc()
        return sandbox.EXIT_INTERNAL
    os.chdir(scratch)
    return sandbox.child_execute(sandbox.Job(func, spec["payload"]), scratch)


if __name__ == "__main__":
    sys.stdin = open(os.devnull)
    faulthandler.enable()
    os._exit(main(sys.argv[1]))
