"""National-scale benchmark: `python benchmarks/run_benchmark.py` (see README "Performance").

For each size (default 250k, 500k, 1M and 2M patient rows: ~140 trusts, 21 alliances, 8 tumour
sites, 3 years, the full bundled catalogue with 12 risk-adjusted indicators) it times, in a fresh
process each: loading; cohort aggregation; model fitting; funnel/overdispersion/classification;
writing results; total wall time and peak RSS. Alongside, a straightforward baseline (pandas groupby
+ a statsmodels formula GLM per risk-adjusted indicator) on the same data gives the speed-up as a
measured ratio. It also times re-running one indicator after an option change (models reused) and
the dashboard's first render and view switches on the bundled sample. Prints a table and writes
benchmarks/results/latest.json. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(n: int) -> dict[str, float]:
    """Our pipeline, stage by stage, on the national-scale extract of n rows."""
    import polars as pl

    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.io import load_all
    from audit_metrics.pipeline import cohort_counts, run_indicator, write_table

    folder = DATA / f"n{n}"
    t0 = time.perf_counter()
    loaded = load_catalogue(ROOT / "indicators.yaml", data={"patients": folder / "patients.parquet",
                                                              "lung_cns": folder / "lung_cns_by_trust.csv",
                                                              "personalised_care": folder / "personalised_care_by_trust.csv"})
    data = {"patients": folder / "patients.parquet", "lung_cns": folder / "lung_cns_by_trust.csv",
            "personalised_care": folder / "personalised_care_by_trust.csv"}
    units, datasets = load_all(loaded, data=data)
    t_load = time.perf_counter() - t0
    timings: dict[str, float] = {}
    prepared = {}
    t1 = time.perf_counter()
    for spec in loaded.catalogue.indicators:
        ds_spec = loaded.catalogue.datasets[spec.dataset]
        prepared[spec.id] = cohort_counts(spec, datasets[spec.dataset], unit_column=ds_spec.unit_column or "trust_code",
                                          period_column=ds_spec.period_column, timings=timings)
    t_cohort = time.perf_counter() - t1
    t2 = time.perf_counter()
    results = {}
    for spec in loaded.catalogue.indicators:
        ds_spec = loaded.catalogue.datasets[spec.dataset]
        results[spec.id] = run_indicator(spec, loaded.options(spec), datasets[spec.dataset], units,
                                         unit_column="trust_code", period_column=ds_spec.period_column,
                                         prepared=prepared[spec.id])
    t_funnel = time.perf_counter() - t2
    t_curve = time.perf_counter()
    for r in results.values():
        _ = r.curves  # limit curves for plots: computed on first use, timed separately
    t_curves = time.perf_counter() - t_curve
    t3 = time.perf_counter()
    table = pl.concat([r.table for r in results.values()], how="diagonal_relaxed")
    out = RESULTS / f"results_n{n}.parquet"
    write_table(table, out)
    t_write = time.perf_counter() - t3
    out.unlink()
    total = time.perf_counter() - t0
    # re-run one indicator after an option change: cohort and model reused
    spec = loaded.indicator("bowel_mort90")
    t4 = time.perf_counter()
    run_indicator(spec, loaded.options(spec).replace(overdispersion="multiplicative", limits=(0.9, 0.998)),
                  datasets["patients"], units, unit_column="trust_code", period_column="financial_year",
                  prepared=prepared["bowel_mort90"])
    t_rerun = time.perf_counter() - t4
    fit = timings.get("model_fit", 0.0)
    return {"load_s": t_load, "aggregate_s": t_cohort - fit, "model_fit_s": fit, "funnel_classify_s": t_funnel,
            "write_s": t_write, "total_s": total - t_curves, "limit_curves_all_indicators_s": t_curves, "rerun_one_indicator_s": t_rerun, "peak_rss_mb": _peak_rss_mb(),
            "rows_used": datasets["patients"].accounting.rows_used, "results_rows": table.height}


def baseline(n: int) -> dict[str, float]:
    """The straightforward approach: pandas + statsmodels formula GLMs, same cohorts and covariates."""
    import pandas as pd
    import polars as pl
    import statsmodels.formula.api as smf
    from statsmodels.genmod.families import Binomial

    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.expressions import compile_expression

    folder = DATA / f"n{n}"
    loaded = load_catalogue(ROOT / "indicators.yaml", check_data=False)
    specs = [s for s in loaded.catalogue.indicators if s.is_patient_level]
    # cohort masks are evaluated with polars for both (not timed): the baseline has no SQL parser
    frame = pl.read_parquet(folder / "patients.parquet")
    masks = {s.id: frame.select((compile_expression(s.cohort, frame.schema) if s.cohort else pl.lit(True))
                                .fill_null(False)).to_series().to_numpy() for s in specs}
    events = {s.id: frame.select(compile_expression(s.numerator, frame.schema)).to_series().to_pandas() for s in specs}
    del frame
    t0 = time.perf_counter()
    df = pd.read_parquet(folder / "patients.parquet")
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    fit = 0.0
    for spec in specs:
        cohort = df[masks[spec.id]].copy()
        cohort["event"] = events[spec.id][masks[spec.id]].to_numpy()
        cohort = cohort[cohort["event"].notna()]
        cohort["event"] = cohort["event"].astype(float)
        if spec.risk_adjustment is not None:
            cats = set(spec.risk_adjustment.categorical)
            terms = [f"C({c.name})" if c.name in cats else c.name for c in spec.risk_adjustment.covariates]
            tf = time.perf_counter()
            model = smf.glm("event ~ " + " + ".join(terms), data=cohort, family=Binomial()).fit()
            fit += time.perf_counter() - tf
            cohort = cohort.loc[model.fittedvalues.index]
            cohort["expected"] = model.fittedvalues
        agg = cohort.groupby("trust_code").agg(observed=("event", "sum"), n=("event", "size"))
        del agg
    total = t_load + time.perf_counter() - t1
    return {"load_s": t_load, "model_fit_s": fit, "total_s": total, "peak_rss_mb": _peak_rss_mb()}


def dashboard() -> dict[str, float]:
    """First render and view switches of the dashboard on the bundled sample (AppTest, server side)."""
    from streamlit.testing.v1 import AppTest

    t0 = time.perf_counter()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    first = time.perf_counter() - t0
    switches = {}
    for view in ("Indicator", "Trust profile", "Cancer Alliance", "Outliers & export", "Overview"):
        t = time.perf_counter()
        at.sidebar.radio[0].set_value(view).run()
        switches[view] = time.perf_counter() - t
    t = time.perf_counter()
    at.sidebar.radio[0].set_value("Indicator").run()
    at.selectbox(key="ind_indicator").set_value("lung_cns").run()
    switches["change indicator"] = time.perf_counter() - t - switches["Indicator"]
    return {"first_render_s": first, **{f"switch_{k}_s": v for k, v in switches.items()}}


def _child(kind: str, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--n", str(n)], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="250000,500000,1000000,2000000")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    if args.child:
        result = {"ours": ours, "baseline": baseline, "dashboard": lambda _n: dashboard()}[args.child](args.n)
        print(json.dumps(result))
        return
    from audit_metrics.sample import write_sample

    RESULTS.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    report: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "date": time.strftime("%Y-%m-%d"), "sizes": {}}
    for n in sizes:
        folder = DATA / f"n{n}"
        if not (folder / "patients.parquet").exists():
            t = time.perf_counter()
            write_sample(folder, patients=n, seed=2026)
            print(f"generated {n:,} rows in {time.perf_counter() - t:.1f} s", flush=True)
        row = {"ours": _child("ours", n)}
        if not args.no_baseline:
            row["baseline"] = _child("baseline", n)
            row["speedup_total"] = row["baseline"]["total_s"] / row["ours"]["total_s"]
        report["sizes"][str(n)] = row
        o = row["ours"]
        print(f"{n:>9,} rows: load {o['load_s']:.2f}s  aggregate {o['aggregate_s']:.2f}s  fit {o['model_fit_s']:.2f}s  "
              f"funnel {o['funnel_classify_s']:.2f}s  write {o['write_s']:.2f}s  TOTAL {o['total_s']:.2f}s  "
              f"(+ plot curves {o['limit_curves_all_indicators_s']:.2f}s)  "
              f"peak RSS {o['peak_rss_mb']:.0f} MB  re-run 1 indicator {o['rerun_one_indicator_s']:.3f}s"
              + (f"  | baseline {row['baseline']['total_s']:.2f}s ({row['speedup_total']:.1f}x slower)"
                 if "baseline" in row else ""), flush=True)
    runs = [_child("dashboard", 0) for _ in range(3)]  # fresh process each; report median and range
    d = {k: sorted(r[k] for r in runs)[1] for k in runs[0]}
    report["dashboard_sample"] = {"median": d, "runs": runs}
    print("dashboard (bundled sample, median of 3 fresh processes): "
          + ", ".join(f"{k} {v:.2f}s" for k, v in d.items())
          + f"  (first render range {min(r['first_render_s'] for r in runs):.2f}-{max(r['first_render_s'] for r in runs):.2f}s)")
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
