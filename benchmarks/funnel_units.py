"""Funnel limits and flags for many units, the call alone (issue 16: "the default (exact) funnel method
on 20,000 units").

    .venv/bin/python benchmarks/funnel_units.py [--units 20000]

Prints the median wall and CPU (process) seconds of 7 timed calls (after one warm-up) for: exact
limits at 95% and 99.8% plus the units' z and status with no overdispersion estimate; the same with
the default robust-ML estimate (in-control data, and data whose trusts differ with logit SD 0.2); and
the transformed method. On a shared machine the CPU seconds are the figure to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import special

from audit_metrics.catalogue import MethodOptions
from audit_metrics.outliers import assess_units


def _time(fn, reps: int = 7) -> tuple[float, float]:
    """Median wall and CPU seconds of ``reps`` calls after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=20_000)
    k = parser.parse_args().units
    rng = np.random.default_rng(0)
    n = np.round(np.exp(rng.uniform(np.log(20), np.log(5000), k)))
    ok = np.ones(k, dtype=bool)
    base = {"limits": (0.95, 0.998), "overdispersion": "additive", "robust": "winsorise", "trim": 0.1,
            "min_denominator": 0, "min_units": 10, "limit_method": "exact", "fdr": False, "transform": "arcsine"}
    for sd in (0.0, 0.2):
        o = rng.binomial(n.astype(int), special.expit(special.logit(0.1) + rng.normal(0, sd, k))).astype(float)
        for label, opts in (("exact, no overdispersion estimate", {"overdispersion": "none",
                                                                   "estimator": "dersimonian_laird"}),
                            ("exact + robust ML (default)", {}),
                            ("transformed + robust ML", {"limit_method": "transformed"})):
            options = MethodOptions(**{**base, **opts})
            wall, cpu = _time(lambda options=options, o=o: assess_units(o, n, ok, statistic="proportion",
                                                                          options=options, target=0.1))
            print(f"{k:,} units, logit SD {sd}: {label:40s} {wall:.3f} s wall, {cpu:.3f} s CPU")


if __name__ == "__main__":
    main()
