"""Plain-English sentences about results (clinician-facing). Formats numbers for display only."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["INTERPRETATION", "chance_phrase", "format_value", "overdispersion_sentence", "p_text", "result_sentence"]

INTERPRETATION = (
    "A flag is a smoke alarm: it prompts a look at the data and at the service, not a verdict on "
    "quality and not a league table. Check data completeness and case ascertainment first."
)


def format_value(value: float | None, multiplier: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if multiplier == 100:
        return f"{value * 100:.1f}%"
    return f"{value:.3g}"


def chance_phrase(p_value: float | None) -> str:
    """'about 1 time in 40' for p = 0.025 (two-sided p of a difference this large)."""
    if p_value is None or math.isnan(p_value):
        return ""
    if p_value <= 0:
        return "less than 1 time in a million"
    n = 1 / p_value
    if n >= 1_000_000:
        return "less than 1 time in a million"
    if n >= 1000:
        return f"about 1 time in {round(n, -2):,.0f}"
    if n >= 20:
        return f"about 1 time in {round(n / 5) * 5:,.0f}"
    return f"about 1 time in {max(round(n), 1):,.0f}"


def result_sentence(row: dict[str, Any], *, title: str, risk_adjusted: bool) -> str:
    """One sentence for one unit and indicator, e.g. for the trust profile."""
    m = row.get("multiplier") or 1.0
    status = str(row["status"])
    name = row.get("unit_name") or row.get("unit_code")
    if status == "not_assessed":
        reason = row.get("not_assessed_reason") or "not enough data"
        return f"{title}: not assessed for {name} ({reason})."
    scale = row.get("rate_scale") or 1.0
    if risk_adjusted:
        observed = row["crude_value"]
        expected = row["expected"] / row["denominator"] if row.get("denominator") else float("nan")
        text = (f"{title} was {format_value(observed, m)} against {format_value(expected, m)} expected "
                f"for its patients")
    else:
        target = row["target"] * (scale if risk_adjusted else 1.0)
        text = f"{title} was {format_value(row['value'], m)} against {format_value(target, m)} expected"
    label = row["status_label"]
    if status == "within":
        return f"{text}; this is within the range expected from chance alone."
    chance = chance_phrase(row.get("p_value"))
    words, _, named = label.partition(" (")  # the label's level: alert/alarm, or an only limit ('outside 99.8%')
    level = named.removesuffix(")") or ("alarm" if status.startswith("alarm") else "alert")
    return (f"{text}; this is {words} ({level}): a difference this large would arise by chance "
            f"{chance}.")


def p_text(p: float) -> str:
    """'p < 0.001' below 0.001 (printed to a few digits such a p reads 'p = 0', or as 4.76e-90), else 'p = 0.012'."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def overdispersion_sentence(od: Any) -> str:
    """The method panel's account of overdispersion: estimator, estimate, test and decision, in words."""
    if od is None:
        return "not estimated."
    names = {"robust_ml": "robust maximum likelihood (beta-binomial / negative binomial; units beyond the "
                          "99.8% limits set aside and the model refitted)",
             "dersimonian_laird": f"DerSimonian-Laird on {od.trim:.0%} {od.robust}d z-scores (FunnelPlotR/SHMI parity)",
             "multiplicative_phi": f"multiplicative phi on {od.trim:.0%} {od.robust}d z-scores"}
    how = names.get(od.estimator, od.estimator)
    if not math.isfinite(od.phi):
        return f"{od.reason[0].upper() + od.reason[1:]} (estimator: {how})."
    test = ""
    if math.isfinite(od.p_value):
        verdict = ("trusts vary more than chance alone would make them" if od.p_value < 0.05
                   else "no clear evidence that trusts vary more than chance")
        test = f" {od.test[0].upper() + od.test[1:]}: {p_text(od.p_value)} ({verdict})."
    if od.applied:
        decision = "The limits are widened by this tau2."
    else:
        decision = od.reason[0].upper() + od.reason[1:] + "."
    return (f"estimated by {how}: between-trust variance tau2 = {od.tau2:.3g} on the limits' scale, "
            f"dispersion ratio phi = {od.phi:.3g}, from {od.n_units} units.{test} {decision}")
