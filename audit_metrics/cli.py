"""``audit-metrics`` command line: validate, schema, run, outliers, diff, sample."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from audit_metrics.exceptions import AuditMetricsError, CatalogueError, ExtractError

__all__ = ["main"]


def _data_overrides(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            msg = f"--data expects NAME=PATH, got {item!r}"
            msg_0 = f"error: {msg}"
            raise SystemExit(msg_0)
        name, path = item.split("=", 1)
        out[name.strip()] = path.strip()
    return out


def _add_catalogue(p: argparse.ArgumentParser) -> None:
    """The catalogue, the same way for every command: positional, or --catalogue (--indicators: older name)."""
    p.add_argument("catalogue", nargs="?", default=None, metavar="CATALOGUE",
                   help="the indicator catalogue (default: indicators.yaml)")
    p.add_argument("--catalogue", "--indicators", dest="catalogue_option", metavar="CATALOGUE",
                   help="the same, as an option (--indicators is the older name)")


def _resolve_catalogue(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One catalogue path in ``args.indicators`` (what the commands read), however it was given."""
    positional, option = getattr(args, "catalogue", None), getattr(args, "catalogue_option", None)
    if positional and option and positional != option:
        parser.error(f"two catalogues given ({positional} and --catalogue {option}); give one")
    args.indicators = positional or option or "indicators.yaml"


def _cmd_validate(args: argparse.Namespace) -> int:
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.io import load_all

    data = _data_overrides(args.data)
    loaded = load_catalogue(args.indicators, data=data)
    cat = loaded.catalogue
    print(f"{args.indicators}: OK - {len(cat.indicators)} indicators, {len(cat.datasets)} datasets, "
          f"{len({i.tumour_site for i in cat.indicators})} tumour sites")
    if args.rows:
        _, datasets = load_all(loaded, data=data)
        for ds in datasets.values():
            print(ds.accounting.summary())
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from audit_metrics.catalogue import catalogue_json_schema

    text = json.dumps(catalogue_json_schema(), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from audit_metrics.sample import write_sample
    from audit_metrics.sample_trends import write_monthly

    paths = write_sample(args.out, patients=args.patients, seed=args.seed, patients_format=args.format)
    paths["monthly_outcomes"] = write_monthly(args.out)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from audit_metrics.pipeline import run_cli

    code = run_cli(args)
    if code == 0 and args.inequalities_out:
        from audit_metrics.inequality import write_inequalities

        for path in write_inequalities(args.indicators, args.inequalities_out, data=_data_overrides(args.data),
                                       only=args.indicator):
            if not args.quiet:
                print(f"wrote {path}")
    return code


def _cmd_diff(args: argparse.Namespace) -> int:
    from audit_metrics.releases import diff_releases, list_releases

    if args.list:
        print(list_releases(args.store).write_csv(), end="")
        return 0
    diff = diff_releases(args.store, args.release_a, args.release_b)
    for line in diff.summary_lines():
        print(line)
    for r in diff.changes.iter_rows(named=True):
        print(f"  {r['indicator_id']} {r['level']} {r['unit_code']} ({r['period']}): {r['status_a'] or '-'} -> "
              f"{r['status_b'] or '-'}: {r['change']}" + (f" [{r['note']}]" if r["note"] else ""))
    if args.out:
        _write_diff(diff, Path(args.out))
        print(f"wrote {args.out}")
    return 0


def _cmd_outliers(args: argparse.Namespace) -> int:
    """The dashboard's outlier list ('Outliers & export' download) for the same filters, to a file."""
    from audit_metrics import sharing, views
    from audit_metrics.catalogue import load_catalogue
    from audit_metrics.pipeline import run_audit

    out = Path(args.out)
    if out.suffix.lower() not in {".csv", ".xlsx"}:
        msg = f"--out {out.name}: use a .csv or .xlsx file name"
        raise AuditMetricsError(msg)
    data = _data_overrides(args.data)
    loaded = load_catalogue(args.indicators, data=data)
    run = run_audit(loaded, data=data)  # every indicator, as the dashboard computes them
    group = views.group_level(run.units.groups) if run.units else None
    frame = run.units.frame if run.units else None
    alliances = ([str(a) for a in frame[group].drop_nulls().unique().to_list()]
                 if frame is not None and group in frame.columns else [])
    filters = sharing.OutlierFilters(
        alliances=_as_written(args.alliance, alliances),
        tumour_sites=_as_written(args.site, [r.spec.tumour_site for r in run.results.values()]),
        indicators=_as_written(args.indicator, list(run.results)), levels=tuple(args.level or sharing.LEVELS),
        directions=tuple(args.direction or sharing.DIRECTIONS), period=args.period)
    synthetic = sharing.uses_bundled_sample(loaded, data)
    shared = sharing.build_outlier_export(run, loaded, filters, synthetic=synthetic, data=data)
    shared.write(out)
    if not args.quiet:
        if synthetic:
            print("note: the bundled synthetic sample data are in use (stated in the file's read-me)")
        print(f"wrote {out}: {shared.table.height} flagged result(s)"
              + (f"; {shared.withheld} not listed because the flag alone would reveal a small count"
                 if shared.withheld else ""))
    return 0


def _as_written(chosen: Sequence[str] | None, known: Sequence[str]) -> tuple[str, ...]:
    """Each chosen value as the results write it, matched ignoring case and surrounding spaces when that
    picks exactly one ('--site lung' is 'Lung'); otherwise as typed, for the filter check to refuse with the
    choices."""
    folded: dict[str, set[str]] = {}
    for value in known:
        folded.setdefault(value.strip().casefold(), set()).add(value)
    out = []
    for value in chosen or ():
        matches = folded.get(value.strip().casefold(), set())
        out.append(value if value in matches or len(matches) != 1 else next(iter(matches)))
    return tuple(out)


def _write_diff(diff, out: Path) -> None:
    from audit_metrics import export

    if out.suffix.lower() == ".xlsx":
        export.write_workbook(out, diff.sheets())
    elif out.suffix.lower() == ".csv":
        out.write_bytes(export.to_csv_bytes(diff.changes))
    else:
        msg = f"--out {out.name}: use a .csv or .xlsx file name"
        raise AuditMetricsError(msg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audit-metrics",
        description="Funnel plots and risk-adjusted outlier status for national clinical audits.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check the indicator catalogue against its schema and data")
    _add_catalogue(p)
    p.add_argument("--data", action="append", metavar="NAME=PATH", help="use another file for a dataset")
    p.add_argument("--rows", action="store_true", help="also load the data and print the row accounting")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of the catalogue")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("run", help="compute funnel limits and outlier status for every indicator")
    _add_catalogue(p)
    p.add_argument("--data", action="append", metavar="NAME=PATH", help="use another file for a dataset")
    p.add_argument("--out", required=True, help="results file: .csv, .xlsx or .parquet")
    p.add_argument("--indicator", action="append", metavar="ID", help="only these indicators")
    p.add_argument("--limits-out", help="also write the funnel limit curves (.csv, .xlsx or .parquet)")
    p.add_argument("--accounting-out", help="also write the row accounting (.csv)")
    p.add_argument("--inequalities-out", help="also write the breakdowns (groups and gaps, small numbers "
                   "suppressed): .xlsx (two sheets), or .csv/.parquet (a second file NAME_gaps)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary lines")
    p.add_argument("--record", nargs="?", const="releases.sqlite", metavar="STORE",
                   help="also record this run as a release in a results store (SQLite file; "
                        "default releases.sqlite)")
    p.add_argument("--label", help="a name for the recorded release (e.g. 2024-Q1)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("outliers", help="write the outlier list, as the dashboard's 'Outliers & export' download",
                       description="Flagged results (outside their funnel limits) with small counts suppressed, "
                                   "the same content as the dashboard's download for the same filters. Repeat an "
                                   "option to choose several values; leave it out for all.")
    _add_catalogue(p)
    p.add_argument("--data", action="append", metavar="NAME=PATH", help="use another file for a dataset")
    p.add_argument("--alliance", action="append", metavar="NAME",
                   help="only trusts in this Cancer Alliance (or the units' first grouping), by name as listed")
    p.add_argument("--site", action="append", metavar="SITE", help="only this tumour site (e.g. Lung)")
    p.add_argument("--indicator", action="append", metavar="ID", help="only this indicator (e.g. lung_cns)")
    p.add_argument("--level", action="append", choices=["alarm", "alert"],
                   help="alarm (outside the 99.8%% limits) or alert (outside 95%% only); default both")
    p.add_argument("--direction", action="append", choices=["worse", "better", "higher", "lower"],
                   help="worse/better (or higher/lower where an indicator has no better direction); default all")
    p.add_argument("--period", help="one period (e.g. 2022/23, or a pooled label such as '2021/22 to 2023/24'); "
                                    "default: each indicator's headline period")
    p.add_argument("--out", required=True, help="the file to write: .csv, or .xlsx (with a read-me sheet)")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    p.set_defaults(func=_cmd_outliers)

    p = sub.add_parser("diff", help="what changed between two recorded releases")
    p.add_argument("release_a", nargs="?", help="release number, label, 'previous' (default) or 'latest'")
    p.add_argument("release_b", nargs="?", help="release number, label or 'latest' (default)")
    p.add_argument("--store", default="releases.sqlite", help="results store (default releases.sqlite)")
    p.add_argument("--out", help="also write the changes (.csv, or .xlsx with indicator and provenance sheets)")
    p.add_argument("--list", action="store_true", help="list the recorded releases instead")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("sample", help="write the synthetic sample extracts")
    p.add_argument("--out", default="sample_data")
    p.add_argument("--patients", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.set_defaults(func=_cmd_sample)
    return parser


_OUTPUTS = ("out", "limits_out", "accounting_out", "inequalities_out")  # files a command writes (sample's --out: a folder)


def _check_outputs(args: argparse.Namespace) -> None:
    """Each output file's folder exists, before any work (a missing one was a traceback after the whole run)."""
    for name in _OUTPUTS if args.command != "sample" else ():
        value = getattr(args, name, None)
        if value and not Path(value).parent.is_dir():
            option = "--" + name.replace("_", "-")
            msg = (f"{option} {value}: the folder {str(Path(value).parent)!r} does not exist (create it first, or "
                   "name a file in a folder that exists)")
            raise AuditMetricsError(msg)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("validate", "run", "outliers"):
        _resolve_catalogue(parser, args)
    try:
        _check_outputs(args)
        return int(args.func(args))
    except CatalogueError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        n = len(exc.problems)
        print(f"{n} problem{'s' if n != 1 else ''} found.", file=sys.stderr)
        return 1
    except ExtractError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except AuditMetricsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file that cannot be written (no permission, a full disk): said, not a traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot write or read{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.startswith("xlsxwriter"):  # FileCreateError (e.g. the workbook open in Excel)
            print(f"error: cannot write the workbook: {exc} (is it open in another program?)", file=sys.stderr)
            return 1
        raise


def entry() -> None:
    """The ``audit-metrics`` command: :func:`main`, then leave at once.

    Every file is written and closed when ``main`` returns (results, limits, accounting, a release committed and
    its connection closed), so tearing the interpreter down (clearing numpy's, scipy's, polars' and pydantic's
    modules) does nothing for the user: it took 0.2 s of every run (#16). An exception still leaves the usual way,
    with its message.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with the stream closed (>&-)
            continue
        try:
            stream.flush()
        except BrokenPipeError:  # a reader that went away (| head): nothing more to say
            pass
        except (OSError, ValueError) as exc:  # output lost (a full disk): not a success, as Python's own exit says
            code = code or 120
            if stream is sys.stdout and sys.stderr is not None:
                with suppress(OSError, ValueError):
                    print(f"error: the output could not be written: {exc}", file=sys.stderr, flush=True)
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
