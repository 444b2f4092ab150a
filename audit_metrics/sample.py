"""Seeded generator of clearly synthetic, statistically realistic national-audit extracts.

Everything here is fictional: trust names and codes (ODS-style but starting with ``Z``, a letter
no real English trust code uses), Cancer Alliances and regions. The data-generating model is a
logistic case-mix model per outcome plus a random trust effect (so between-trust overdispersion is
real) and a small, documented set of planted outliers (``PLANTED``), which the tests look for.

``write_sample(out_dir, patients=..., seed=...)`` is deterministic: the same arguments give the
same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "ETHNIC_GROUPS",
    "NO_GAP_TRUST",
    "PLANTED",
    "WIDE_GAP_TRUST",
    "PlantedEffect",
    "make_trusts",
    "write_sample",
]

N_TRUSTS = 140
N_ALLIANCES = 21
FIRST_FY = 2021  # financial years 2021/22, 2022/23, 2023/24
N_YEARS = 3

REGIONS = (
    "Northmarch",
    "Westmere",
    "Midshire",
    "Eastholm",
    "Southdown Vale",
    "Thamesreach",
    "Peninsula West",
)
_ALLIANCE_STEMS = (
    "Fellside", "Tyneholm", "Brackenmoor", "Aldwater", "Greyhaven", "Oakmere", "Silverdale",
    "Kestrel Vale", "Harrowfield", "Marshby", "Cindermoor", "Larkspur", "Ferncombe", "Wildmoor",
    "Stonebridge", "Heronsgate", "Ashcombe", "Lowmarsh", "Riverholt", "Copperfield", "Brightwell",
)
_PLACE_A = ("Ash", "Bram", "Cor", "Dun", "Elm", "Fen", "Gled", "Hol", "Ire", "Kes", "Lan", "Mor",
            "Nor", "Oak", "Pen", "Quar", "Ros", "Sil", "Thorn", "Wyn")
_PLACE_B = ("bury", "wick", "combe", "stead", "mouth", "holt", "ley", "thwaite", "dale", "minster")
_TRUST_SUFFIX = ("NHS Foundation Trust", "Hospitals NHS Trust", "University Hospitals NHS Trust",
                 "Teaching Hospitals NHS Foundation Trust")

SITES = ("Bowel", "Lung", "Prostate", "Oesophago-gastric", "Breast", "Kidney", "Pancreatic", "Ovarian")
SITE_SHARE = np.array([0.18, 0.20, 0.20, 0.05, 0.22, 0.06, 0.05, 0.04])
SITE_AGE = np.array([70.0, 72.0, 70.0, 70.0, 62.0, 65.0, 72.0, 64.0])
SITE_AGE_SD = np.array([11.0, 10.0, 8.0, 10.0, 13.0, 12.0, 10.0, 12.0])
SITE_MALE = np.array([0.56, 0.52, 1.0, 0.70, 0.01, 0.63, 0.50, 0.0])
# stage 1..4 probabilities by site (Unknown is drawn separately)
SITE_STAGE = np.array([
    [0.16, 0.28, 0.31, 0.25],  # bowel
    [0.20, 0.10, 0.22, 0.48],  # lung
    [0.30, 0.30, 0.25, 0.15],  # prostate
    [0.10, 0.15, 0.30, 0.45],  # OG
    [0.45, 0.40, 0.10, 0.05],  # breast
    [0.45, 0.12, 0.20, 0.23],  # kidney
    [0.10, 0.15, 0.25, 0.50],  # pancreatic
    [0.20, 0.08, 0.45, 0.27],  # ovarian
])
SITE_EMERGENCY = np.array([-1.9, -1.5, -3.0, -2.2, -3.6, -2.2, -1.0, -1.1])  # logit base
SITE_SCREENED = np.array([0.10, 0.0, 0.0, 0.0, 0.30, 0.0, 0.0, 0.0])
SITE_RESECTION = np.array([0.9, -1.0, -0.5, -0.6, 1.8, 0.2, -1.6, 0.7])  # logit base, stage 1-3
SITE_MORT90 = np.array([-4.0, -3.9, -5.0, -3.45, -6.0, -4.5, -3.2, -4.0])
SITE_CURATIVE = np.array([0.0, -1.1, 0.0, 0.0, 0.3, 0.0, -0.8, 0.0])  # logit offset
SITE_DEATH1Y = np.array([-1.9, -0.95, -3.4, -0.9, -4.0, -2.3, 0.2, -1.4])

STAGE_LABELS = np.array(["1", "2", "3", "4"])


@dataclass(frozen=True)
class PlantedEffect:
    """A documented quality difference planted at one trust (log-odds shift)."""

    outcome: str
    trust_index: int
    log_odds: float
    direction: str  # "higher" or "lower" event rate than expected
    note: str


# Trust indices refer to the order in trusts.csv (0-based). Large trusts are chosen so that the
# planted shifts are detectable; see sample_data/README.md.
PLANTED: tuple[PlantedEffect, ...] = (
    PlantedEffect("died_90d", 4, 1.10, "higher", "bowel/OG/lung 90-day post-operative mortality"),
    PlantedEffect("died_90d", 11, -1.30, "lower", "bowel/OG/lung 90-day post-operative mortality"),
    PlantedEffect("curative_treatment", 20, -1.10, "lower", "curative-intent treatment"),
    PlantedEffect("curative_treatment", 33, 1.00, "higher", "curative-intent treatment"),
    PlantedEffect("emergency", 47, 0.90, "higher", "diagnosis after emergency presentation"),
    PlantedEffect("sact", 58, -1.00, "lower", "systemic anti-cancer therapy"),
    PlantedEffect("hna_offered", 66, -1.60, "lower", "holistic needs assessment offered (aggregate)"),
    PlantedEffect("seen_by_cns", 75, -1.50, "lower", "lung CNS contact (aggregate)"),
)
# The tertiary centre with a much sicker case-mix but average quality: flagged (if at all) only
# before risk adjustment.
CASEMIX_TRUST = 2
POOR_ASCERTAINMENT_TRUST = 90  # submits ~55% of its cases
POOR_ASA_COMPLETENESS_TRUST = 101  # ASA grade missing for ~45% of its surgical patients
MERGED_TRUST = 120  # its predecessor code appears in 2021/22 records
PREDECESSOR_CODE = "ZQ9"
# Deprivation gradients (log-odds per IMD quintile towards the most deprived, quintile 1): nationally
# more emergency presentation and less curative-intent treatment among the most deprived. One trust's
# gradient is much steeper than the national one; another's is flat (no gap at all).
EMERGENCY_GRADIENT = 0.12
CURATIVE_GRADIENT = -0.15
WIDE_GAP_TRUST = 45      # ZE5: extra 0.30 (emergency) and -0.35 (curative) per quintile
WIDE_GAP_EXTRA = {"emergency": 0.30, "curative": -0.35}
NO_GAP_TRUST = 122       # ZN2: the national gradient cancelled
# ONS 2021 census high-level ethnic groups; shares typical of older cancer patients in England.
ETHNIC_GROUPS = ("White", "Asian", "Black", "Mixed", "Other")
ETHNIC_SHARE = np.array([0.885, 0.055, 0.032, 0.012, 0.016])


TERTIARY = (0, 2, 4, 11, 20, 33, 47, 58, 66, 75)
_ALLIANCE_OF = np.sort(np.arange(N_TRUSTS) % N_ALLIANCES)
_SPECIALIST_FOR = np.array([min(TERTIARY, key=lambda t, a=_ALLIANCE_OF[i]: (abs(_ALLIANCE_OF[t] - a), t))
                            for i in range(N_TRUSTS)])


def _place(rng: np.random.Generator) -> str:
    return f"{rng.choice(_PLACE_A)}{rng.choice(_PLACE_B)}"


def make_trusts(seed: int = 20261122) -> pl.DataFrame:
    """The fictional reference table of trusts, alliances and regions."""
    rng = np.random.default_rng(seed)
    alliance_of = _ALLIANCE_OF
    codes = []
    letters = "ABCDEFGHJKLMNPRSTUVWXY"
    for i in range(N_TRUSTS):
        codes.append(f"Z{letters[i // 10 % len(letters)]}{i % 10}")
    names: list[str] = []
    seen: set[str] = set()
    for _ in range(N_TRUSTS):
        while True:
            a, b = _place(rng), _place(rng)
            name = f"{a} and {b} {rng.choice(_TRUST_SUFFIX)}" if rng.random() < 0.35 else (
                f"{a} {rng.choice(_TRUST_SUFFIX)}")
            if name not in seen:
                seen.add(name)
                names.append(name)
                break
    # volume: lognormal spread; a few tertiary centres are large
    volume = rng.lognormal(mean=0.0, sigma=0.45, size=N_TRUSTS)
    tertiary = np.zeros(N_TRUSTS, dtype=bool)
    tertiary[list(TERTIARY)] = True
    volume[tertiary] = np.maximum(volume[tertiary], 1.0) * 2.5
    volume[[130, 135, 139]] *= 0.15  # small district hospitals
    alliances = [f"{_ALLIANCE_STEMS[a]} Cancer Alliance" for a in alliance_of]
    alliance_codes = [f"QZ{a + 1:02d}" for a in alliance_of]
    regions = [REGIONS[a // 3] for a in alliance_of]
    return pl.DataFrame({
        "trust_code": codes,
        "trust_name": names,
        "cancer_alliance_code": alliance_codes,
        "cancer_alliance": alliances,
        "region": regions,
        "trust_type": np.where(tertiary, "Tertiary centre", "District general"),
        "relative_volume": np.round(volume / volume.mean(), 4),
    })


def _masked(values: np.ndarray, valid: np.ndarray, name: str) -> pl.Series:
    """A polars Series of ``values`` with nulls where ``valid`` is False."""
    return pl.select(
        pl.when(pl.lit(pl.Series(valid))).then(pl.lit(pl.Series(values))).alias(name)
    ).to_series()


def _logit_draw(rng: np.random.Generator, eta: np.ndarray) -> np.ndarray:
    return rng.random(eta.shape[0]) < 1.0 / (1.0 + np.exp(-eta))


def _ethnic_group(trust: np.ndarray, n_trusts: int, rng: np.random.Generator) -> pl.Series:
    """Ethnic group with realistic missingness: trusts differ in diversity and in how completely they
    record it (about 8% missing overall, a few trusts with a quarter or more missing)."""
    diversity = rng.lognormal(0.0, 0.8, n_trusts)
    missing_rate = rng.beta(1.2, 14.0, n_trusts)
    missing_rate[rng.choice(n_trusts, 6, replace=False)] = rng.uniform(0.25, 0.40, 6)
    share = np.tile(ETHNIC_SHARE, (n_trusts, 1))
    share[:, 1:] *= diversity[:, None]
    share[:, 0] = np.maximum(1 - share[:, 1:].sum(axis=1), 0.3)
    share /= share.sum(axis=1, keepdims=True)
    u = rng.random(trust.shape[0])[:, None]
    idx = np.minimum((u > np.cumsum(share[trust], axis=1)).sum(axis=1), len(ETHNIC_GROUPS) - 1)
    recorded = rng.random(trust.shape[0]) >= missing_rate[trust]
    return _masked(np.array(ETHNIC_GROUPS)[idx], recorded, "ethnic_group")


def _trust_gap(trust: np.ndarray, outcome: str) -> np.ndarray:
    """Per-patient extra log-odds slope per quintile towards the most deprived at the planted gap trusts
    (the national gradient is cancelled at the no-gap trust)."""
    national = {"emergency": EMERGENCY_GRADIENT, "curative": CURATIVE_GRADIENT}[outcome]
    extra = np.zeros(trust.shape[0])
    extra[trust == WIDE_GAP_TRUST] = WIDE_GAP_EXTRA[outcome]
    extra[trust == NO_GAP_TRUST] = -national
    return extra


def _expit(eta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-eta))


def _patients(trusts: pl.DataFrame, n: int, rng: np.random.Generator,
              side_rng: np.random.Generator | None = None) -> pl.DataFrame:
    n_trusts = trusts.height
    vol = trusts["relative_volume"].to_numpy()
    trust = rng.choice(n_trusts, size=n, p=vol / vol.sum())
    # poor case ascertainment: drop ~45% of that trust's records
    keep = ~((trust == POOR_ASCERTAINMENT_TRUST) & (rng.random(n) < 0.45))
    trust = trust[keep]
    n = trust.shape[0]
    site = rng.choice(len(SITES), size=n, p=SITE_SHARE / SITE_SHARE.sum())
    day = rng.integers(0, (date(FIRST_FY + N_YEARS, 4, 1) - date(FIRST_FY, 4, 1)).days, size=n)
    diag = np.datetime64(date(FIRST_FY, 4, 1)) + day.astype("timedelta64[D]")
    months = diag.astype("datetime64[M]").astype(int) % 12 + 1
    years = diag.astype("datetime64[Y]").astype(int) + 1970
    fy_start = np.where(months >= 4, years, years - 1)
    fy = np.char.add(np.char.add(fy_start.astype(str), "/"), np.char.zfill((fy_start + 1 - 2000).astype(str), 2))

    casemix = trust == CASEMIX_TRUST
    age = rng.normal(SITE_AGE[site] + 6.0 * casemix, SITE_AGE_SD[site])
    age = np.clip(np.round(age), 18, 99).astype(np.int16)
    male = rng.random(n) < SITE_MALE[site]
    sex = np.where(male, "M", "F")
    stage_p = SITE_STAGE[site].copy()
    stage_p[casemix] = stage_p[casemix] * np.array([0.6, 0.8, 1.1, 1.5])
    stage_p /= stage_p.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    stage_idx = (u > np.cumsum(stage_p, axis=1)).sum(axis=1)
    stage = STAGE_LABELS[np.minimum(stage_idx, 3)].astype(object)
    stage[rng.random(n) < 0.06] = "Unknown"
    stage_num = np.where(stage == "Unknown", 3.2, stage_idx + 1.0)

    comorb = rng.poisson(np.clip(0.25 + 0.03 * (age - 60) + 0.6 * casemix, 0.05, None))
    comorb = np.minimum(comorb, 6).astype(np.int8)
    ps_latent = 0.03 * (age - 65) + 0.35 * comorb + 0.35 * (stage_num - 2) + rng.normal(0, 0.9, n)
    ps = np.clip(np.floor(ps_latent + 1.0), 0, 4).astype(np.float64)
    ps[rng.random(n) < 0.08] = np.nan
    imd = rng.integers(1, 6, size=n).astype(np.float64)
    imd[rng.random(n) < 0.02] = np.nan
    imd_num = np.nan_to_num(imd, nan=3.0)
    ps_num = np.nan_to_num(ps, nan=1.5)

    # trust random effects (logit scale, SD 0.25) for each outcome
    def trust_effect(outcome: str, sd: float = 0.25) -> np.ndarray:
        eff = rng.normal(0.0, sd, n_trusts)
        for p in PLANTED:
            if p.outcome == outcome:
                eff[p.trust_index] = p.log_odds
        eff[CASEMIX_TRUST] = 0.0
        return eff[trust]

    # One uniform draw per patient decides both the base process (which the later outcomes depend on,
    # so that every earlier planted effect is unchanged) and the reported one, which carries the
    # planted trust gaps on top of the national gradient.
    eta_emergency = (SITE_EMERGENCY[site] + 0.45 * (stage_num - 2.5) + 0.02 * (age - 70)
                     + EMERGENCY_GRADIENT * (3 - imd_num) + trust_effect("emergency"))
    u_emergency = rng.random(n)
    emergency = u_emergency < _expit(eta_emergency)
    emergency_shown = u_emergency < _expit(eta_emergency + _trust_gap(trust, "emergency") * (3 - imd_num))
    screened = (~emergency_shown) & (rng.random(n) < SITE_SCREENED[site])
    route = np.where(emergency_shown, "Emergency presentation",
                     np.where(screened, "Screening",
                              np.where(rng.random(n) < 0.7, "Urgent suspected cancer referral",
                                       "Other referral")))
    lung = site == 1
    histology = np.where(rng.random(n) < 0.86, "NSCLC", "SCLC")
    prost = site == 2
    rg = np.array(["Low", "Intermediate", "High", "Metastatic"])
    risk_group = rg[np.where(stage == "Unknown", 1, np.minimum(stage_idx, 3))]

    fit = 1.2 - 0.05 * (age - 70) - 0.35 * comorb - 0.6 * ps_num
    eta_curative = (1.6 + SITE_CURATIVE[site] - 1.3 * (stage_num - 2) + fit - 0.8 * (lung & (histology == "SCLC"))
                    + trust_effect("curative_treatment"))
    u_curative = rng.random(n)
    curative = u_curative < _expit(eta_curative)
    # reported curative-intent treatment: the national deprivation gradient and the planted trust gaps
    # act on non-surgical curative treatment (a resected patient always counts as treated curatively)
    curative_shown = u_curative < _expit(
        eta_curative + (CURATIVE_GRADIENT + _trust_gap(trust, "curative")) * (3 - imd_num))
    resect = curative & _logit_draw(
        rng, SITE_RESECTION[site] - 0.5 * (stage_num - 2) + 0.5 * fit + trust_effect("resection", 0.3))
    resect &= stage != "4"
    # oesophago-gastric surgery happens at specialist (tertiary) centres: the record goes there
    og_surgery = resect & (site == 3)
    trust = np.where(og_surgery, _SPECIALIST_FOR[trust], trust)
    asa = np.clip(np.round(1.6 + 0.03 * (age - 65) + 0.35 * comorb + rng.normal(0, 0.6, n)), 1, 5)
    asa = np.where(resect, asa, np.nan)
    asa_missing = resect & (rng.random(n) < np.where(trust == POOR_ASA_COMPLETENESS_TRUST, 0.45, 0.05))
    asa_recorded = asa.copy()
    asa_recorded[asa_missing] = np.nan
    urgency = np.where(emergency & (rng.random(n) < 0.7), "Emergency", "Elective")

    eta90 = (SITE_MORT90[site] + 0.045 * (age - 70) + 0.55 * (np.nan_to_num(asa, nan=2) - 2)
             + 0.25 * (stage_num - 2) + 1.0 * (resect & (urgency == "Emergency")) + 0.12 * comorb
             + 0.06 * (imd_num - 3) + trust_effect("died_90d"))
    died_90d = _logit_draw(rng, eta90)
    readmit = _logit_draw(
        rng, -2.3 + 0.01 * (age - 70) + 0.15 * comorb + 0.5 * (urgency == "Emergency")
        + trust_effect("readmit_30d"))
    # ~1% of surgical outcomes not yet linked: missing outcome
    surgical_outcome_known = resect & (rng.random(n) >= 0.01)

    sact = _logit_draw(rng, -0.9 + 0.55 * (stage_num - 2) + fit + 0.3 * resect * (stage_num >= 3)
                       + trust_effect("sact"))
    eta1y = (SITE_DEATH1Y[site] + 1.0 * (stage_num - 2) + 0.035 * (age - 70) + 0.45 * ps_num
             + 0.15 * comorb - 0.6 * curative + 0.7 * emergency + trust_effect("died_1y", 0.15))
    died_1y = _logit_draw(rng, eta1y)
    died_2y = died_1y | _logit_draw(rng, eta1y - 1.3)
    followed_2y = diag < np.datetime64("2022-04-01")

    # drawn from a separate stream, so that every other column keeps its draws
    ethnic = _ethnic_group(trust, n_trusts, side_rng or np.random.default_rng(0))
    codes = trusts["trust_code"].to_numpy()[trust].astype(object)
    merged = (trust == MERGED_TRUST) & (fy_start == FIRST_FY)
    codes[merged] = PREDECESSOR_CODE

    df = pl.DataFrame({
        "patient_id": np.arange(1, n + 1, dtype=np.int64),
        "trust_code": codes,
        "diagnosis_date": diag.astype("datetime64[D]"),
        "financial_year": fy,
        "tumour_site": np.array(SITES)[site],
        "age": age,
        "sex": sex,
        "stage": stage.astype(str),
        "histology": _masked(histology, lung, "histology"),
        "risk_group": _masked(risk_group, prost, "risk_group"),
        "performance_status": ps,
        "comorbidity_count": comorb,
        "imd_quintile": imd,
        "ethnic_group": ethnic,
        "route_to_diagnosis": route,
        "emergency_presentation": emergency_shown,
        "curative_treatment": curative_shown | resect,
        "major_resection": resect,
        "urgency": _masked(urgency, resect, "urgency"),
        "asa_grade": asa_recorded,
        "died_90d": _masked(died_90d, surgical_outcome_known, "died_90d"),
        "readmit_30d": _masked(readmit, surgical_outcome_known, "readmit_30d"),
        "sact": sact,
        "died_1y": died_1y,
        "died_2y": _masked(died_2y, followed_2y, "died_2y"),
    }, strict=False)
    return df.with_columns(
        pl.col("performance_status").cast(pl.Int8, strict=False),
        pl.col("imd_quintile").cast(pl.Int8, strict=False),
        pl.col("asa_grade").cast(pl.Int8, strict=False),
    )


def _aggregate(trusts: pl.DataFrame, per_trust_year: float, rng: np.random.Generator,
               outcomes: dict[str, float]) -> pl.DataFrame:
    """A NATCAN-style published table: one row per trust and financial year."""
    rows = []
    vol = trusts["relative_volume"].to_numpy()
    effects = {o: rng.normal(0, 0.3, trusts.height) for o in outcomes}
    for p in PLANTED:
        if p.outcome in effects:
            effects[p.outcome][p.trust_index] = p.log_odds
    for y in range(N_YEARS):
        fy = f"{FIRST_FY + y}/{FIRST_FY + y + 1 - 2000:02d}"
        denom = rng.poisson(per_trust_year * vol)
        row = {"period": np.full(trusts.height, fy), "patients": denom}
        for o, base in outcomes.items():
            p = 1 / (1 + np.exp(-(np.log(base / (1 - base)) + effects[o])))
            row[o] = rng.binomial(denom, p)
        rows.append(pl.DataFrame(row).with_columns(trusts.select(
            "trust_code", "trust_name", "cancer_alliance")))
    df = pl.concat(rows)
    return df.select("trust_code", "trust_name", "cancer_alliance", "period", "patients",
                     *outcomes.keys())


def write_sample(out_dir: str | Path, *, patients: int = 200_000, seed: int = 20261122,
                 patients_format: str = "parquet") -> dict[str, Path]:
    """Write the bundled synthetic extracts to ``out_dir`` and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    trusts = make_trusts(seed)
    pts = _patients(trusts, patients, rng, np.random.default_rng([seed, 1]))
    # a few realistic extract errors, so that the row accounting has something to report
    bad = pts.head(3).with_columns(pl.lit("ZZZ").alias("trust_code"),
                                   (pl.col("patient_id") + 10_000_000).alias("patient_id"))
    dup = pts.slice(100, 2)
    odd_age = pts.slice(200, 1).with_columns(pl.lit(130, dtype=pl.Int16).alias("age"),
                                             (pl.col("patient_id") + 20_000_000).alias("patient_id"))
    pts = pl.concat([pts, bad, dup, odd_age])
    scale = patients / 200_000
    lung_cns = _aggregate(trusts, 125 * scale, rng, {"seen_by_cns": 0.78})
    lung_cns = lung_cns.rename({"patients": "patients"})
    pc = _aggregate(trusts, 450 * scale, rng,
                    {"hna_offered": 0.72, "care_plan": 0.58, "eot_summary": 0.46})
    mergers = pl.DataFrame({"old_code": [PREDECESSOR_CODE],
                            "new_code": [trusts["trust_code"][MERGED_TRUST]],
                            "merged_on": [date(FIRST_FY + 1, 4, 1)]})
    # HES-style count of expected diagnoses, for case ascertainment
    counts = (pts.with_columns(pl.col("trust_code").replace(PREDECESSOR_CODE,
                                                           trusts["trust_code"][MERGED_TRUST]))
              .group_by("trust_code").len())
    trusts_out = trusts.join(counts, on="trust_code", how="left").with_columns(
        pl.when(pl.int_range(pl.len()) == POOR_ASCERTAINMENT_TRUST)
        .then(pl.col("len") / 0.55).otherwise(pl.col("len") * 1.02)
        .round(0).cast(pl.Int64).alias("hes_expected_cases")).drop("len", "relative_volume")

    paths = {
        "trusts": out / "trusts.csv",
        "mergers": out / "trust_mergers.csv",
        "lung_cns": out / "lung_cns_by_trust.csv",
        "personalised_care": out / "personalised_care_by_trust.csv",
    }
    trusts_out.write_csv(paths["trusts"])
    mergers.write_csv(paths["mergers"])
    lung_cns.write_csv(paths["lung_cns"])
    pc.write_csv(paths["personalised_care"])
    if patients_format == "parquet":
        paths["patients"] = out / "patients.parquet"
        buf = io.BytesIO()
        pts.write_parquet(buf, compression="zstd", compression_level=10, statistics=False)
        paths["patients"].write_bytes(buf.getvalue())
    else:
        paths["patients"] = out / "patients.csv"
        pts.write_csv(paths["patients"])
    return paths
