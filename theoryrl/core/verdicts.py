"""Three-valued verdicts: pass, fail, or not judged, with the measured value, threshold and margin.

A paper's claim is judged by comparing a measured value with a threshold (`at_least`,
`at_most`) or two arms with each other (`greater`). A `Verdict` keeps what a reader needs to trust
it: the value, the threshold, the signed margin (positive on the passing side), the standard error
where the value is sampled, and for `not judged` the precondition that failed. Rules (issue 20):
- a comparison between arms passes only by more than `n_se` (2) standard errors of the difference;
  inside that band it fails ("not beyond noise"), a tie is never a pass;
- a value that is NaN / None cannot be judged; `inf >= inf` (both arms never reached a target) is
  not judged either, never a pass;
- a claim with preconditions (`judged_if`) is not judged when one fails, and says which: e.g.
  "stays short" presupposes the chain was learned, so the short answer is a choice.
`summary.json` keeps the plain booleans scripts read (`verdict`: claim -> bool, judged claims only)
and gains `verdicts`: claim -> `Verdict.to_json()` beside them: `analyze` returns
`Outcome.judged(..., verdicts)` (core/stages.py) and core/results.make_summary writes all three.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

PASS, FAIL, NOT_JUDGED = "pass", "fail", "not judged"


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: str                    # PASS | FAIL | NOT_JUDGED
    value: float | None = None     # what was measured (for `greater`: the difference a - b)
    threshold: float | None = None  # what it was compared with (for `greater`: n_se * se)
    margin: float | None = None    # signed distance to the threshold, > 0 on the passing side
    se: float | None = None        # standard error of `value` where it is sampled
    reason: str = ""               # why not judged, or what was compared
    paper: str = ""                # the paper's own number or statement for this claim (for RESULTS.md)

    def __post_init__(self):
        if self.status not in (PASS, FAIL, NOT_JUDGED):
            raise ValueError(f"verdict status {self.status!r} (allowed: {PASS}, {FAIL}, {NOT_JUDGED})")

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def judged(self) -> bool:
        return self.status != NOT_JUDGED

    def to_json(self) -> dict:
        return {"status": self.status, "value": _num(self.value), "threshold": _num(self.threshold),
                "margin": _num(self.margin), "se": _num(self.se), "reason": self.reason, "paper": self.paper}

    def citing(self, paper: str) -> "Verdict":
        """This verdict with the paper's number for the claim attached."""
        return dataclasses.replace(self, paper=paper)


def _num(x):
    """JSON-safe: None stays None, +-inf is kept as a string, NaN becomes None."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _unknown(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (hasattr(x, "__float__") and math.isnan(float(x)))


def not_judged(reason: str, value=None, threshold=None) -> Verdict:
    return Verdict(NOT_JUDGED, value, threshold, None, None, reason)


def at_least(value, threshold: float, *, se: float | None = None, what: str = "") -> Verdict:
    """Pass iff value >= threshold (finite). The SE is recorded so a reader sees how close it was."""
    return _vs_threshold(value, threshold, se, sign=+1.0, what=what)


def at_most(value, threshold: float, *, se: float | None = None, what: str = "") -> Verdict:
    """Pass iff value <= threshold (finite)."""
    return _vs_threshold(value, threshold, se, sign=-1.0, what=what)


def _vs_threshold(value, threshold, se, sign, what) -> Verdict:
    if _unknown(value):
        return not_judged(f"{what or 'the value'} was not measured (NaN)", None, threshold)
    value = float(value)
    if math.isinf(value) and math.isinf(threshold) and (value > 0) == (threshold > 0):
        return not_judged(f"{what or 'the value'} and its threshold are both {value}", value, threshold)
    margin = sign * (value - threshold)
    return Verdict(PASS if margin >= 0 else FAIL, value, threshold, margin, se, what)


def greater(a, b, *, se_a: float, se_b: float, n_se: float = 2.0, what: str = "") -> Verdict:
    """Arm a beats arm b beyond noise: a - b > n_se * sqrt(se_a^2 + se_b^2). Value = a - b,
    threshold = that noise band, margin = value - threshold. Two infinite arms are not judged."""
    if _unknown(a) or _unknown(b):
        return not_judged(f"{what or 'an arm'} was not measured (NaN)")
    a, b = float(a), float(b)
    if math.isinf(a) and math.isinf(b):
        return not_judged(f"{what or 'both arms'}: both are {a} and {b}; infinities are not compared")
    se = math.sqrt(float(se_a) ** 2 + float(se_b) ** 2)
    if math.isnan(se):
        return not_judged(f"{what or 'the comparison'}: no standard error")
    diff, band = a - b, n_se * se
    if math.isinf(diff):  # one arm never reached (inf) while the other did: decided without noise
        return Verdict(PASS if diff > 0 else FAIL, diff, band, diff, se, what)
    return Verdict(PASS if diff > band else FAIL, diff, band, diff - band, se, what)


def judged_if(preconditions: Mapping[str, bool], verdict: Verdict) -> Verdict:
    """`verdict` when every precondition holds; otherwise not judged, naming the ones that failed
    (e.g. {"the chain was learned (chain-token accuracy >= 0.99)": False})."""
    failed = [name for name, ok in preconditions.items() if not ok]
    if not failed:
        return verdict
    return dataclasses.replace(verdict, status=NOT_JUDGED, reason="precondition failed: " + "; ".join(failed))


def all_of(parts: Mapping[str, Verdict], what: str) -> Verdict:
    """Every part passes: the record of the closest part (smallest margin), naming it; not judged
    (naming the part) when any part is not judged."""
    for name, v in parts.items():
        if not v.judged:
            return dataclasses.replace(v, reason=f"{name}: {v.reason}")
    name, worst = min(parts.items(), key=lambda kv: kv[1].margin)
    status = PASS if all(v.passed for v in parts.values()) else FAIL
    return dataclasses.replace(worst, status=status, reason=f"{what}; closest: {name}")


def split(verdicts: Mapping[str, Verdict]) -> tuple[dict[str, bool], dict[str, str], dict[str, dict]]:
    """The three summary.json views of a claim table: booleans of the judged claims (the fields
    scripts read today), claim -> reason of the not-judged ones, and claim -> full record."""
    booleans = {k: v.passed for k, v in verdicts.items() if v.judged}
    reasons = {k: v.reason for k, v in verdicts.items() if not v.judged}
    return booleans, reasons, {k: v.to_json() for k, v in verdicts.items()}


def mean_se(samples) -> tuple[float, float]:
    """Mean and standard error (ddof = 1) of per-seed values; SE is NaN with fewer than two seeds,
    so a comparison built on one seed is not judged rather than passed on zero noise."""
    xs = [float(x) for x in samples]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    mean = sum(xs) / n
    if n < 2:
        return mean, math.nan
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, math.sqrt(var / n)
