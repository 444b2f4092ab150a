"""overdispersion.brentq takes scipy.optimize.brentq's steps (#16: the run no longer imports scipy.optimize).

Oracle: scipy.optimize.brentq itself, which must give the same root to the last bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from audit_metrics.overdispersion import brentq


def _cases():
    rng = np.random.default_rng(16)
    for _ in range(200):
        a, b, c = rng.normal(size=3)
        yield (lambda x, a=a, b=b, c=c: x**3 + a * x**2 + b * x + c), -10.0, 10.0
        s = float(rng.uniform(0.1, 50))
        yield (lambda x, s=s, c=c: math.tanh(s * (x - c))), -5.0, 5.0
        yield (lambda x, c=c: math.exp(x) - math.exp(c)), -20.0, 20.0
    yield (lambda x: x - 1.0), 1.0, 3.0            # a root at an end
    yield (lambda x: (x - 0.3) ** 3), -1.0, 2.0    # flat near the root
    yield (lambda x: -1.0 if x < 0.7 else 1.0), 0.0, 1.0  # a step: bisection only


@pytest.mark.parametrize("tol", [2e-12, 1e-13])
def test_same_root_as_scipy(tol: float) -> None:
    n = 0
    for f, lo, hi in _cases():
        if f(lo) * f(hi) > 0:
            continue
        rtol = max(tol, 4 * np.finfo(float).eps)
        theirs, info = optimize.brentq(f, lo, hi, xtol=tol, rtol=rtol, full_output=True, disp=False)
        if not info.converged:  # e.g. the cubic: scipy's 100 steps are not enough, and not ours either
            with pytest.raises(RuntimeError, match="did not converge"):
                brentq(f, lo, hi, xtol=tol, rtol=rtol)
            continue
        assert brentq(f, lo, hi, xtol=tol, rtol=rtol) == theirs, (lo, hi, theirs)
        n += 1
    assert n > 500


def test_no_bracket_and_no_convergence_raise() -> None:
    with pytest.raises(ValueError, match="different signs"):
        brentq(lambda x: x * x + 1, -1.0, 1.0)
    with pytest.raises(RuntimeError, match="did not converge"):
        brentq(lambda x: (x - 0.3) ** 3, -1.0, 2.0)  # scipy does not converge either


def test_the_run_does_not_import_scipy_optimize() -> None:
    import subprocess
    import sys

    code = ("import sys; import audit_metrics.pipeline, audit_metrics.cli; "
            "print('scipy.optimize' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
