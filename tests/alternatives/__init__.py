"""Correct solutions written differently from the reference: each must keep full marks.

They guard against a grader that only accepts the reference's exact arithmetic. One
module per lesson (``lessonNN.py``), each with a dict ``ALTERNATIVES`` mapping an
exercise id to a list of cell sources; this package merges them.
"""

import importlib
import pkgutil

ALTERNATIVES = {}
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    ALTERNATIVES.update(importlib.import_module(f"{__name__}.{_module}").ALTERNATIVES)
