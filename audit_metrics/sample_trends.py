"""Seeded generator of the synthetic monthly extract for trend charts (SPC, CUSUM, VLAD).

``sample_data/monthly_outcomes.parquet``: one row per patient starting systemic anti-cancer therapy
(SACT) at one of the fictional trusts of ``sample.make_trusts``, 36 months from April 2021, with the
treatment date, case-mix and whether the patient died within 30 days (a real national indicator:
30-day mortality after SACT). Outcomes follow a logistic case-mix model plus a random trust effect
(SD 0.2 on the log-odds scale), and two **planted changes over time** (``PLANTED_TRENDS``):

- a gradual **deterioration** at one trust: better than average for 18 months, then worse month by
  month, ending with about 2.5 times the odds it started with;
- a gradual **improvement** at another: the mirror image.

Averaged over the three years both trusts are close to expected, so the pooled funnel plot does not
flag them; the SPC chart of their monthly rate and the risk-adjusted CUSUM do (the tests check both).

``second_release`` makes the "changed extract" of a later release: 30-day deaths linked late at
one trust (``RELEASE_CHANGE``), which the release diff must list, and nothing else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from audit_metrics.sample import make_trusts

__all__ = ["FIRST_MONTH", "MONTHS", "PLANTED_TRENDS", "RELEASE_CHANGE", "PlantedTrend", "make_monthly",
           "second_release", "write_monthly"]

FIRST_MONTH = date(2021, 4, 1)
MONTHS = 36
PER_TRUST_MONTH = 27.0   # patients starting SACT per month at a trust of average volume
SEED = 20261123


@dataclass(frozen=True)
class PlantedTrend:
    """A change over time at one trust: log-odds effect ``start`` until ``change_month``, then a
    straight line to ``end`` at the last month."""

    trust_code: str
    direction: str       # "deterioration" or "improvement"
    start: float
    end: float
    change_month: int

    def effect(self, month: np.ndarray) -> np.ndarray:
        slope = (self.end - self.start) / (MONTHS - 1 - self.change_month)
        return np.where(month < self.change_month, self.start, self.start + slope * (month - self.change_month))


PLANTED_TRENDS: tuple[PlantedTrend, ...] = (
    PlantedTrend("ZE5", "deterioration", -0.45, 0.90, 18),
    PlantedTrend("ZG1", "improvement", 0.45, -0.90, 18),
)


@dataclass(frozen=True)
class ReleaseChange:
    """The planted difference between the first and the second release of the monthly extract."""

    trust_code: str
    extra_deaths: int
    note: str
    # every status change the release diff must list, and no other: (level, unit, first, second)
    expected_changes: tuple[tuple[str, str, str, str], ...]


RELEASE_CHANGE = ReleaseChange(
    "ZC4", 70, "deaths within 30 days linked late (after the first release) at one trust",
    (("trust", "ZC4", "within", "alarm_high"),        # the trust itself
     ("region", "Westmere", "within", "alert_high")),  # ... and its region, whose deaths include them
)


def _month_start(m: np.ndarray) -> np.ndarray:
    return (np.datetime64(FIRST_MONTH, "M") + m.astype("timedelta64[M]")).astype("datetime64[D]")


def make_monthly(seed: int = SEED) -> pl.DataFrame:
    """The monthly SACT extract (see the module docstring)."""
    rng = np.random.default_rng(seed)
    trusts = make_trusts()
    codes = trusts["trust_code"].to_numpy()
    vol = trusts["relative_volume"].to_numpy()
    n_trusts = codes.size
    per_cell = rng.poisson(PER_TRUST_MONTH * np.outer(vol, np.ones(MONTHS)))
    trust = np.repeat(np.repeat(np.arange(n_trusts), MONTHS), per_cell.ravel())
    month = np.repeat(np.tile(np.arange(MONTHS), n_trusts), per_cell.ravel())
    n = trust.size
    start = _month_start(month)
    days = (_month_start(month + 1) - start).astype(int)
    treated = start + (rng.random(n) * days).astype("timedelta64[D]")
    fy_start = FIRST_MONTH.year + (month // 12)
    fy = np.char.add(np.char.add(fy_start.astype(str), "/"), (fy_start + 1 - 2000).astype(str))

    age = np.clip(np.round(rng.normal(66, 11, n)), 18, 95).astype(np.int16)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    stage_idx = (rng.random(n)[:, None] > np.cumsum([0.15, 0.2, 0.3, 0.35])).sum(axis=1).clip(0, 3)
    stage = np.array(["1", "2", "3", "4"])[stage_idx].astype(object)
    stage[rng.random(n) < 0.05] = "Unknown"
    stage_num = np.where(stage == "Unknown", 3.0, stage_idx + 1.0)
    comorb = np.minimum(rng.poisson(np.clip(0.4 + 0.03 * (age - 60), 0.05, None)), 6).astype(np.int8)
    ps = np.clip(np.floor(0.03 * (age - 66) + 0.3 * comorb + 0.3 * (stage_num - 2) + rng.normal(0.7, 0.8, n)),
                 0, 3)
    palliative = rng.random(n) < 1 / (1 + np.exp(-(-1.2 + 1.1 * (stage_num - 2.5) + 0.4 * ps)))
    intent = np.where(palliative, "Palliative", "Curative")

    effect = rng.normal(0.0, 0.2, n_trusts)
    planted = {p.trust_code: p for p in PLANTED_TRENDS}
    for code in planted:
        effect[list(codes).index(code)] = 0.0
    trust_effect = effect[trust]
    for code, p in planted.items():
        mine = trust == list(codes).index(code)
        trust_effect[mine] = p.effect(month[mine])
    eta = (-3.4 + 0.03 * (age - 66) + 0.55 * ps + 0.9 * palliative + 0.25 * (stage_num - 2)
           + 0.1 * comorb + trust_effect)
    died = rng.random(n) < 1 / (1 + np.exp(-eta))
    ps_recorded = ps.copy()
    ps_recorded[rng.random(n) < 0.05] = np.nan

    order = np.lexsort((treated, trust))
    df = pl.DataFrame({
        "patient_id": np.arange(1, n + 1, dtype=np.int64),
        "trust_code": codes[trust[order]],
        "treatment_date": treated[order],
        "financial_year": fy[order],
        "age": age[order],
        "sex": sex[order],
        "stage": stage[order].astype(str),
        "performance_status": ps_recorded[order],
        "comorbidity_count": comorb[order],
        "treatment_intent": intent[order],
        "died_30d": died[order],
    })
    return df.with_columns(pl.col("performance_status").cast(pl.Int8, strict=False))


def second_release(frame: pl.DataFrame, change: ReleaseChange = RELEASE_CHANGE) -> pl.DataFrame:
    """The extract as a later release would hold it: ``change.extra_deaths`` survivors at one trust
    (the latest ones treated in the final year) now recorded as having died within 30 days."""
    rows = frame.with_row_index("_row").filter(
        pl.col("trust_code") == change.trust_code, ~pl.col("died_30d"),
        pl.col("financial_year") == pl.col("financial_year").max())
    late = rows.sort("treatment_date", descending=True).head(change.extra_deaths)["_row"]
    flip = pl.int_range(pl.len()).is_in(late.implode())
    return frame.with_columns(pl.when(flip).then(True).otherwise(pl.col("died_30d")).alias("died_30d"))


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", compression_level=10, statistics=False)
    path.write_bytes(buf.getvalue())


def write_monthly(out_dir: str | Path, *, seed: int = SEED) -> Path:
    """Write ``monthly_outcomes.parquet`` (deterministic: the same seed gives the same bytes)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "monthly_outcomes.parquet"
    _write_parquet(make_monthly(seed), path)
    return path
