"""Three-valued verdicts (core/verdicts.py) against hand-computed cases.

Arms a = 0.90 (se 0.01) and b = 0.85 (se 0.02): the difference 0.05 has se sqrt(1e-4 + 4e-4) =
sqrt(5e-4) = 0.022360..., so the 2-SE band is 0.044721... and the margin 0.005279...: a pass. With
b = 0.86 the difference 0.04 lies inside the band: a fail (not beyond noise). A tie fails. Per-seed
values 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3, SE sqrt(14/12) = 1.0801...
"""
import json
import math

import pytest

from theoryrl.core import verdicts as V


def test_threshold_pass_fail_and_margin():
    v = V.at_least(0.985, 0.98)
    assert v.status == V.PASS and v.margin == pytest.approx(0.005)
    v = V.at_least(0.95, 0.98)
    assert v.status == V.FAIL and v.margin == pytest.approx(-0.03)
    v = V.at_most(0.02, 0.05, se=0.01)
    assert v.status == V.PASS and v.margin == pytest.approx(0.03) and v.se == 0.01
    assert V.at_most(0.06, 0.05).status == V.FAIL


def test_unmeasured_or_infinite_values_are_not_judged():
    assert V.at_least(float("nan"), 0.5).status == V.NOT_JUDGED
    assert V.at_least(None, 0.5).status == V.NOT_JUDGED
    assert V.at_least(float("inf"), float("inf")).status == V.NOT_JUDGED  # inf >= inf is never a pass
    assert V.at_least(float("inf"), 10.0).status == V.PASS
    both = V.greater(float("inf"), float("inf"), se_a=0.0, se_b=0.0)
    assert both.status == V.NOT_JUDGED
    assert V.greater(1.0, 1.0, se_a=math.nan, se_b=0.1).status == V.NOT_JUDGED


def test_arms_pass_only_beyond_two_standard_errors():
    se = math.sqrt(0.01 ** 2 + 0.02 ** 2)
    v = V.greater(0.90, 0.85, se_a=0.01, se_b=0.02)
    assert v.status == V.PASS
    assert v.value == pytest.approx(0.05) and v.threshold == pytest.approx(2 * se)
    assert v.margin == pytest.approx(0.05 - 0.0447213595)
    assert V.greater(0.90, 0.86, se_a=0.01, se_b=0.02).status == V.FAIL  # inside the noise band
    assert V.greater(0.9, 0.9, se_a=0.0, se_b=0.0).status == V.FAIL     # a tie is not a pass
    assert V.greater(float("inf"), 5.0, se_a=1.0, se_b=1.0).status == V.PASS  # one arm never reached


def test_preconditions_turn_a_verdict_into_not_judged_and_name_the_failed_one():
    v = V.judged_if({"chain learned": False, "control reached target": True}, V.at_most(0.0, 0.1))
    assert v.status == V.NOT_JUDGED and "chain learned" in v.reason and "control" not in v.reason
    assert V.judged_if({"chain learned": True}, V.at_most(0.0, 0.1)).status == V.PASS


def test_split_keeps_booleans_of_judged_claims_only_and_json_is_finite_or_named():
    table = {"a": V.at_least(1.0, 0.5), "b": V.at_least(0.1, 0.5), "c": V.not_judged("base failed its gate"),
             "d": V.at_least(float("inf"), 3.0)}
    booleans, reasons, records = V.split(table)
    assert booleans == {"a": True, "b": False, "d": True}
    assert reasons == {"c": "base failed its gate"}
    assert records["d"]["value"] == "inf" and records["b"]["margin"] == pytest.approx(-0.4)
    json.dumps(records, allow_nan=False)  # strict JSON: no NaN / Infinity tokens


def test_mean_se_against_hand_values():
    mean, se = V.mean_se([1, 2, 3, 6])
    assert mean == 3.0 and se == pytest.approx(math.sqrt(14 / 12))
    assert math.isnan(V.mean_se([0.7])[1])  # one seed: no noise estimate, so comparisons are not judged


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError):
        V.Verdict("maybe")


def test_all_of_reports_the_closest_part_and_fails_if_any_fails():
    """Margins 0.3 and 0.1 (both pass) -> pass with the 0.1 record; add a fail (-0.2) -> fail with that
    record; a not-judged part makes the whole not judged, naming the part."""
    parts = {"a": V.at_least(0.8, 0.5), "b": V.at_least(0.6, 0.5)}
    v = V.all_of(parts, "every pair")
    assert v.status == V.PASS and v.margin == pytest.approx(0.1) and "closest: b" in v.reason
    v = V.all_of({**parts, "c": V.at_least(0.3, 0.5)}, "every pair")
    assert v.status == V.FAIL and v.margin == pytest.approx(-0.2) and "closest: c" in v.reason
    v = V.all_of({**parts, "d": V.not_judged("one seed")}, "every pair")
    assert v.status == V.NOT_JUDGED and v.reason == "d: one seed"
