"""#16 (cohort16): time the cohort and model phase of the one-model 2M job, in process.

Loads the extract once, then times ``pipeline.cohort_counts`` several times, reporting the median
wall time and the minor page faults per call.

    .venv/bin/python benchmarks/cohort16_phase.py [benchmarks/data/n2000000/one_model_parquet.yaml] [rounds]
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

from audit_metrics import pipeline
from audit_metrics.catalogue import load_catalogue
from audit_metrics.io import load_all


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/data/n2000000/one_model_parquet.yaml")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    loaded = load_catalogue(path)
    cat = loaded.catalogue
    _, datasets = load_all(loaded)
    spec = cat.indicators[0]
    ds_spec = cat.datasets[spec.dataset]
    walls, faults = [], []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        pipeline.cohort_counts(spec, datasets[spec.dataset], unit_column=ds_spec.unit_column or cat.units.code,
                               period_column=ds_spec.period_column)
        walls.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(f"cohort_counts: median {statistics.median(walls):.3f} s (all {', '.join(f'{w:.3f}' for w in walls)}); "
          f"minor faults median {statistics.median(faults):,.0f}")


if __name__ == "__main__":
    main()
