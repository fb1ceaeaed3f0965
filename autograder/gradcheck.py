"""Gradient checking: the engine's own central differences, in float64.

Every exercise that asks for a gradient is graded against
``numerical_gradient`` of the *reference forward function*, so a backward
pass is checked against the definition of a derivative rather than against
another hand-written backward. Lesson 00 has the learner write the same two
functions; these are the trusted copies the grader uses.
"""

from __future__ import annotations

import numpy as np


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at ``x`` (float64).

    ``x`` is copied to float64 first and never changed.
    """
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        original = x[i]
        x[i] = original + eps
        f_plus = float(f(x))
        x[i] = original - eps
        f_minus = float(f(x))
        x[i] = original
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a, b, floor=1e-8):
    """``max |a - b| / max(|a| + |b|, floor)`` over all entries."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor), initial=0.0))


def gradient_of(forward, wrt, eps=1e-6):
    """Expected-value function for a gradient exercise.

    Returns ``expected(case)``: the numerical gradient of
    ``forward(*case.args.values(), **case.kwargs)`` with respect to the
    argument named ``wrt`` (a name, or a tuple of names for several outputs).
    """
    names = (wrt,) if isinstance(wrt, str) else tuple(wrt)

    def expected(case):
        grads = []
        for name in names:
            def f(value, name=name):
                args = dict(case.args)
                args[name] = value
                return forward(*args.values(), **case.kwargs)
            grads.append(numerical_gradient(f, case.args[name], eps))
        return grads[0] if isinstance(wrt, str) else tuple(grads)

    expected.__doc__ = f"numerical gradient of {forward.__name__} w.r.t. {', '.join(names)}"
    return expected


def gradients_through(forward, wrt, eps=1e-6):
    """Expected-value function for a layer's backward exercise.

    ``forward(*case.args.values(), **case.kwargs)`` returns ``(out, cache)``; the
    upstream gradient is ``case.data["dout"]``. The expected value is the tuple
    of numerical gradients of ``sum(out * dout)`` with respect to each argument
    named in ``wrt``, in that order (a single array when ``wrt`` is one name).
    """
    def loss(case):
        def f(**changed):
            args = dict(case.args)
            args.update(changed)
            out = forward(*args.values(), **case.kwargs)[0]
            return float(np.sum(out * case.data["dout"]))
        return f

    names = (wrt,) if isinstance(wrt, str) else tuple(wrt)

    def expected(case):
        f = loss(case)
        grads = tuple(numerical_gradient(lambda v, n=n: f(**{n: v}), case.args[n], eps)
                      for n in names)
        return grads[0] if isinstance(wrt, str) else grads

    expected.__doc__ = f"numerical gradients of sum({forward.__name__}(...)[0] * dout)"
    return expected
