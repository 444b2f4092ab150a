"""audit_metrics: funnel plots and risk-adjusted outlier status for national clinical audits."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
