"""National-scale benchmark: `python benchmarks/run_benchmark.py` (see README "Performance").

For each size (default 250k, 500k, 1M and 2M patient rows: ~140 trusts, 21 alliances, 8 tumour
sites, 3 years, the full bundled catalogue: 25 indicators, 13 risk-adjusted) it times, in a fresh
process each: loading; cohort aggregation; model fitting; funnel/overdispersion/classification;
writing results; total wall time and peak RSS. Alongside, a straightforward baseline (pandas groupby
+ a statsmodels formula GLM per risk-adjusted indicator) on the same data gives the speed-up as a
measured ratio. It also times re-running one indicator after an option change (models reused) and
the dashboard's first render and view switches on the bundled sample. Prints a table and writes
benchmarks/results/latest.json. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import compileall
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
    specs = [s for s in loaded.catalogue.indicators if s.is_patient_level and s.dataset == "patients"]
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


ONE_MODEL_YAML = """# benchmark: one 5-covariate logistic model on every patient -> O/E -> funnel (written by run_benchmark.py)
version: 1
datasets:
  patients:
    path: {patients}
    period_column: financial_year
    key: [patient_id]
units:
  file: trusts.csv
  code: trust_code
  name: trust_name
  groups: [cancer_alliance, region]
  mergers: trust_mergers.csv
indicators:
  - id: one_model_mort1y
    title: 1-year mortality, all patients, risk-adjusted
    tumour_site: All
    dataset: patients
    numerator: died_1y
    statistic: ratio
    better: lower
    by_period: false
    risk_adjustment:
      covariates: [age, sex, stage, performance_status, comorbidity_count]
      categorical: [sex, stage, performance_status]
"""

# the straightforward way, as a user would write it: pandas + a statsmodels formula GLM, O/E per trust,
# funnel limits by the normal approximation to Poisson around 1 (no SQL parser, no accounting, no checks)
BASELINE_ONE_MODEL = """
import sys
import numpy as np, pandas as pd
import statsmodels.formula.api as smf
from statsmodels.genmod.families import Binomial
from scipy import stats
path = sys.argv[1]
df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
df = df.drop_duplicates("patient_id")
df = df[df["died_1y"].notna()]
df["died_1y"] = df["died_1y"].astype(float)
model = smf.glm("died_1y ~ age + C(sex) + C(stage) + C(performance_status) + comorbidity_count",
                data=df, family=Binomial()).fit()
df = df.loc[model.fittedvalues.index]
df["expected"] = model.fittedvalues
t = df.groupby("trust_code").agg(observed=("died_1y", "sum"), expected=("expected", "sum"))
t["oe"] = t["observed"] / t["expected"]
for c in (0.95, 0.998):
    z = stats.norm.ppf(1 - (1 - c) / 2)
    t[f"lower_{c}"] = 1 - z / np.sqrt(t["expected"])
    t[f"upper_{c}"] = 1 + z / np.sqrt(t["expected"])
t.to_csv(sys.argv[2])
"""


def _uptime() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _timed_process(cmd: list[str]) -> dict[str, float]:
    """One whole process: wall seconds, CPU seconds (user + system, all threads) and its own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        msg = f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}"
        raise RuntimeError(msg)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def _median_of(cmd: list[str], repeats: int) -> dict[str, object]:
    runs = []
    for _ in range(repeats):
        load_before = Path("/proc/loadavg").read_text().split()[0]
        run = _timed_process(cmd)
        run["load_1min_before"] = float(load_before)
        run["load_1min_after"] = float(Path("/proc/loadavg").read_text().split()[0])
        runs.append(run)
    median = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in ("wall_s", "cpu_s", "peak_rss_mb")}
    return {"median": median, "runs": runs}


def whole_processes(n: int, repeats: int, baseline_repeats: int) -> dict[str, object]:
    """The CLI as a user runs it (start-up included), with the straightforward baseline in the same run."""
    folder = DATA / f"n{n}"
    exe = str(Path(sys.executable).with_name("audit-metrics"))
    out = folder / "cli_results.parquet"
    csv_path = folder / "patients.csv"
    if not csv_path.exists():
        import polars as pl

        pl.read_parquet(folder / "patients.parquet").write_csv(csv_path)
    for name in ("trusts.csv", "trust_mergers.csv"):
        if not (folder / name).exists():
            msg = f"{folder / name} missing: delete {folder} and run again to regenerate"
            raise SystemExit(msg)
    for fmt, path in (("parquet", "patients.parquet"), ("csv", "patients.csv")):
        (folder / f"one_model_{fmt}.yaml").write_text(ONE_MODEL_YAML.format(patients=path))
    data = ["--data", f"patients={folder / 'patients.parquet'}",
            "--data", f"lung_cns={folder / 'lung_cns_by_trust.csv'}",
            "--data", f"personalised_care={folder / 'personalised_care_by_trust.csv'}"]
    jobs: dict[str, list[str]] = {
        "catalogue_parquet": [exe, "run", str(ROOT / "indicators.yaml"), *data, "--out", str(out), "--quiet"],
        "one_model_parquet": [exe, "run", str(folder / "one_model_parquet.yaml"), "--out", str(out), "--quiet"],
        "one_model_csv": [exe, "run", str(folder / "one_model_csv.yaml"), "--out", str(out), "--quiet"],
    }
    baseline_jobs = {
        "one_model_parquet": [sys.executable, "-c", BASELINE_ONE_MODEL, str(folder / "patients.parquet"),
                              str(folder / "baseline_out.csv")],
        "one_model_csv": [sys.executable, "-c", BASELINE_ONE_MODEL, str(csv_path), str(folder / "baseline_out.csv")],
        "catalogue_parquet": [sys.executable, __file__, "--child", "baseline", "--n", str(n)],
    }
    # as installed: bytecode compiled (scripts/dev.sh does it, as pip does an installed package), so that no run
    # compiles the package from source where bytecode is not written (PYTHONDONTWRITEBYTECODE)
    compileall.compile_dir(ROOT / "audit_metrics", quiet=1)
    result: dict[str, object] = {"ours": {}, "baseline": {}}
    for name, cmd in jobs.items():
        result["ours"][name] = _median_of(cmd, repeats)
        print(f"  ours {name}: {result['ours'][name]['median']}", flush=True)
    if baseline_repeats:
        for name, cmd in baseline_jobs.items():
            result["baseline"][name] = _median_of(cmd, baseline_repeats)
            print(f"  baseline {name}: {result['baseline'][name]['median']}", flush=True)
    out.unlink(missing_ok=True)
    return result


def _cli_markdown(report: dict[str, object]) -> str:
    m = report["machine"]
    lines = [f"# Whole-process benchmark ({report['date']})", "",
             f"Machine: {m['cpus']} CPUs, {m['memory_gb']} GiB, Python {m['python']}, {m['platform']}. "
             "Each figure is a whole `audit-metrics run` process (start-up, reading, checks, models, limits, "
             "writing), median of the runs listed; CPU is user + system over all threads; RSS is the process's "
             "own peak. The 1-minute load average before and after each run is recorded: this machine is "
             "shared, and wall time under load is not the tool's speed on a quiet machine.", ""]
    from audit_metrics.catalogue import load_catalogue

    specs = load_catalogue(ROOT / "indicators.yaml").catalogue.indicators
    models = sum(1 for s in specs if s.risk_adjustment)
    labels = {"catalogue_parquet": f"full bundled catalogue ({len(specs)} indicators, {models} models), Parquet",
              "one_model_parquet": "one 5-covariate logistic model on every patient -> O/E -> funnel, Parquet",
              "one_model_csv": "the same model, CSV"}
    for n, row in report["cli"].items():
        lines += [f"## {int(n):,} patient rows", "",
                  "| job | ours: wall (median) | ours: CPU | ours: peak RSS | baseline: wall | baseline: CPU | "
                  "baseline: peak RSS | load (1-min) during our runs | runs |",
                  "|---|---:|---:|---:|---:|---:|---:|---|---|"]
        for job, label in labels.items():
            o = row["ours"][job]
            b = row["baseline"].get(job)
            loads = ", ".join(f"{r['load_1min_before']:.1f}-{r['load_1min_after']:.1f}" for r in o["runs"])
            walls = ", ".join(f"{r['wall_s']:.1f}" for r in o["runs"])
            bcols = (f"{b['median']['wall_s']:.1f} s | {b['median']['cpu_s']:.1f} s | "
                     f"{b['median']['peak_rss_mb'] / 1024:.2f} GB" if b else "- | - | -")
            lines.append(f"| {label} | {o['median']['wall_s']:.2f} s | {o['median']['cpu_s']:.2f} s | "
                         f"{o['median']['peak_rss_mb'] / 1024:.2f} GB | {bcols} | {loads} | {walls} |")
        lines.append("")
    lines.append("The baseline for the full catalogue is `run_benchmark.py --child baseline` (pandas + one statsmodels "
                 "formula GLM per risk-adjusted indicator; its cohort masks are prepared untimed but inside the "
                 "process). The one-model baseline is the script `BASELINE_ONE_MODEL` in run_benchmark.py.")
    return "\n".join(lines) + "\n"


def _child(kind: str, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--n", str(n)], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="250000,500000,1000000,2000000")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--cli-only", action="store_true", help="only the whole-process (CLI) jobs")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each whole-process job (median)")
    parser.add_argument("--baseline-repeats", type=int, default=3, help="runs of each baseline job (0: none)")
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
    if args.cli_only:
        report["cli"] = {}
        for n in sizes:
            print(f"{n:,} rows, whole processes (load {_uptime()}):", flush=True)
            report["cli"][str(n)] = whole_processes(n, args.repeats, 0 if args.no_baseline else args.baseline_repeats)
        stamp = time.strftime("%Y-%m-%d_%H%M")
        (RESULTS / f"cli_{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / f"cli_{stamp}.md").write_text(_cli_markdown(report))
        print(f"wrote {RESULTS / f'cli_{stamp}.md'}")
        return
    for n in sizes:
        folder = DATA / f"n{n}"
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
