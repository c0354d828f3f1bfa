"""What a report is asked for (``ReportOptions``) and what it was made from (``Inputs``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.stats.bootstrap import Method
from bench.stats.estimates import AGGREGATE_REPS, PROFILE_REPS
from bench.stats.twosample import PERMUTATIONS

LEVEL = 0.95  # of every confidence interval


@dataclass(frozen=True)
class ReportOptions:
    reps: int = AGGREGATE_REPS  # aggregates and paired comparisons
    profile_reps: int = PROFILE_REPS  # profiles, probability of improvement, curves, per game
    seed: int = 0
    bca: bool = False
    allow_mixed_protocols: bool = False
    compare: tuple[str, ...] = ()  # --compare specs, "A:B"
    reproduce: str = ""  # --reproduce spec, "DER" or "DER=LABEL"
    permutations: int = PERMUTATIONS  # of the reproduction's permutation tests
    ablations: str = ""  # --ablations / study.base: every variant against this one
    sweep: str = ""  # --sweep / study.sweep: an axis label, or "variant"

    @property
    def method(self) -> Method:
        return "bca" if self.bca else "percentile"


@dataclass(frozen=True)
class Inputs:
    """What a report was made from, for its provenance."""

    dirs: tuple[str, ...] = ()  # ledger folders
    baselines: tuple[str, ...] = ()  # bundled baseline names ("DER")
    externals: tuple[str, ...] = ()  # external score files
    # Where each bundled baseline's numbers come from (``baselines.baseline_source``); read by
    # whoever loads the inputs, so that the analysis itself never reads a file.
    baseline_sources: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dirs": list(self.dirs),
            "baselines": list(self.baselines),
            "externals": list(self.externals),
        }
