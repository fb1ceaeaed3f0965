"""The course's autograder: ``check(fn)`` in a notebook, ``python -m autograder`` in a terminal."""

from .check import check

__all__ = ["check"]
__version__ = "0.1.0"
