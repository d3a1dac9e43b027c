"""Offline evaluation: temporal split, ranking metrics by cohort, weight tuning."""

from novarank.evaluation.metrics import COHORTS, cohort_of, ranking_metrics
from novarank.evaluation.split import Holdout, temporal_split

__all__ = ["COHORTS", "Holdout", "cohort_of", "ranking_metrics", "temporal_split"]
