"""In-control average run length of the risk-adjusted CUSUM for the sample's trend indicator.

    .venv/bin/python benchmarks/cusum_arl.py [--chains 2000]

Prints, for a range of decision limits h, the simulated ARL0 (patients between false signals when
outcomes are exactly as the case-mix model expects), its Monte Carlo standard error and what it
means in years at a trust of median and of large volume. The default h (``cusum.DEFAULT_H``) is
marked. Numbers are printed, never asserted (tests/test_cusum.py checks the simulation itself).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from audit_metrics import cusum, trends
from audit_metrics.catalogue import load_catalogue
from audit_metrics.io import load_all

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicator", default="sact_mort30")
    parser.add_argument("--chains", type=int, default=2000)
    args = parser.parse_args()
    loaded = load_catalogue(ROOT / "indicators.yaml")
    spec = next(s for s in loaded.catalogue.indicators if s.id == args.indicator)
    _, datasets = load_all(loaded, only=[args.indicator])
    cohort = trends.trend_cohort(loaded, spec, datasets[spec.dataset])
    risk = cohort.frame["risk"].to_numpy()
    years = len(cohort.months) / 12
    per_year = cohort.frame.group_by("unit_code").len()["len"].to_numpy() / years
    median, large = float(np.median(per_year)), float(np.quantile(per_year, 0.9))
    print(f"{args.indicator}: {risk.size:,} patients, mean risk {risk.mean():.3f}; patients a year per trust: "
          f"median {median:.0f}, 90th centile {large:.0f}; {args.chains} chains per row")
    print(f"{'direction':<14}{'h':>5}{'ARL0':>10}{'SE':>8}{'years (median)':>16}{'years (90th)':>14}{'time':>8}")
    for odds_ratio, name in ((cusum.DETERIORATION, "deterioration"), (cusum.IMPROVEMENT, "improvement")):
        for h in (3.0, 3.5, 4.0, 4.5, 5.0, 5.5):
            start = time.perf_counter()
            est = cusum.simulate_arl(risk, odds_ratio=odds_ratio, h=h, chains=args.chains)
            mark = " (default)" if h == cusum.DEFAULT_H else ""
            bound = ">" if est.censored else " "
            print(f"{name:<14}{h:>5.1f}{bound}{est.arl:>9,.0f}{est.standard_error:>8,.0f}{est.arl / median:>16.1f}"
                  f"{est.arl / large:>14.1f}{time.perf_counter() - start:>7.2f}s{mark}")


if __name__ == "__main__":
    main()
