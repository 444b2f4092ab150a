"""The Inequalities gradient chart in its half-width column (about 270 px at a 1024 px window): its title wrapped
to that width (at the full width's wrap it lost both ends) and the breakdown's axis title below the turned group
names (it sat on them). Seen in the #12 polish screenshots; checked on the figure's layout."""

from __future__ import annotations

import polars as pl

from audit_metrics.ui import inequalities


def _groups() -> pl.DataFrame:
    names = ["Asian", "Black", "Mixed", "Other", "White"]
    rows = [{"unit_code": code, "group": g, "group_order": i, "value": 0.15, "lower_ci": 0.1, "upper_ci": 0.2,
             "observed": 15.0, "denominator": 100.0} for code in ("national", "ZA0") for i, g in enumerate(names)]
    return pl.DataFrame(rows)


def test_title_fits_the_half_width_and_axis_title_clears_the_names() -> None:
    title = "By ethnic group: national and this unit, a deliberately long chart title"
    fig = inequalities.gradient_figure(_groups(), unit="ZA0", multiplier=100, title=title, label="ethnic group")
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) > 1 and all(len(line) <= inequalities.GRADIENT_TITLE_WIDTH for line in lines)
    assert " ".join(lines) == title  # nothing lost
    assert fig.layout.margin.t >= 60 + 20 * (len(lines) - 1) - 10  # room for every line
    assert fig.layout.xaxis.automargin is True and fig.layout.xaxis.title.standoff == 8
    assert fig.layout.xaxis.title.text == "ethnic group"
