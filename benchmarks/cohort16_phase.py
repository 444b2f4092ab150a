"""#16 (cohort16): time the cohort and model phase of the one-model 2M job, in process.

Loads the extract once, then times ``pipeline.cohort_counts`` several times: the first call (the one a
CLI run makes) and the median of the others, in wall and CPU seconds, with the minor page faults.

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
    walls, cpus, faults = [], [], []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu = time.process_time()
        start = time.perf_counter()
        pipeline.cohort_counts(spec, datasets[spec.dataset], unit_column=ds_spec.unit_column or cat.units.code,
                               period_column=ds_spec.period_column)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(f"cohort_counts: first {walls[0]:.3f} s wall {cpus[0]:.3f} s CPU {faults[0]:,} minor faults; "
          f"then median {statistics.median(walls[1:] or walls):.3f} s wall {statistics.median(cpus[1:] or cpus):.3f} s CPU "
          f"{statistics.median(faults[1:] or faults):,.0f} faults")


if __name__ == "__main__":
    main()
