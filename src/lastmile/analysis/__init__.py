"""Disaggregated analysis: pooled WER per condition × group, Δ from clean, gaps, tests, verdicts.

See shared DESIGN, "Analysis", for the definitions. Entry point: :func:`analyze`.
"""

from lastmile.analysis.analyze import analyze, analyze_table
from lastmile.analysis.compare import Comparison, compare_runs
from lastmile.analysis.counts import REQUIRED_ITEM_KEYS, CountTable, count_table
from lastmile.analysis.mitigation import MitigationReport, analyze_mitigation
from lastmile.analysis.planning import PlanResult, plan_speakers
from lastmile.analysis.result import (
    FLAGS,
    Analysis,
    CellStats,
    ConditionVerdict,
    Estimate,
    Flag,
    PairGap,
    Totals,
)
from lastmile.analysis.settings import FairnessSettings, Metric
from lastmile.analysis.stats import benjamini_hochberg, permutation_p_value

__all__ = [
    "FLAGS",
    "REQUIRED_ITEM_KEYS",
    "Analysis",
    "CellStats",
    "Comparison",
    "ConditionVerdict",
    "CountTable",
    "Estimate",
    "FairnessSettings",
    "Flag",
    "Metric",
    "MitigationReport",
    "PairGap",
    "PlanResult",
    "Totals",
    "analyze",
    "analyze_mitigation",
    "analyze_table",
    "benjamini_hochberg",
    "compare_runs",
    "count_table",
    "permutation_p_value",
    "plan_speakers",
]
