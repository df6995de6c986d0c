"""RESULTS.md, the reference folder and `compare` (theoryrl/results_page.py) on hand-made summaries.

Two synthetic finished runs: chain-emergence with full verdict records (a pass with margin 0.015,
a FAIL with margin -0.03, a not-judged claim whose base failed its gate) and parity-rl with the
plain booleans of an older summary (one pass, one fail, one not judged). By hand, the page counts
Ran-Milo et al.: 3 claims, 1 pass, 1 fail, 1 not judged; Tsilivis et al.: 3 claims, 1 / 1 / 1.
The committed reference folder must rebuild the committed RESULTS.md byte for byte.
"""
import json
from pathlib import Path

import pytest

from theoryrl import cli, results_page
from theoryrl.core import verdicts as V
from theoryrl.core.config import run_id
from theoryrl.core.results import ResultsError

REPO = Path(__file__).resolve().parents[2]


def finished(root: Path, eid: str, summary: dict, seeds=(42, 43)) -> Path:
    config = {"experiment": eid, "tier": "quick", "config": {"seeds": list(seeds)}}
    folder = root / eid / run_id(config)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "summary.json").write_text(json.dumps({"experiment": eid, "tier": "quick", **summary}))
    (folder / "env.json").write_text(json.dumps({"git": {"sha": "abcdef0123", "dirty": False}}))
    (folder / "DONE").write_text("")
    return folder


@pytest.fixture
def results(tmp_path):
    records = {"softmax_m8_test_ge_98": V.at_least(0.995, 0.98).citing("99.6%"),
               "linear_m12_test_ge_98": V.at_least(0.95, 0.98),
               "uniform_beats_hard": V.not_judged("the base failed its gate")}
    booleans, reasons, full = V.split(records)
    finished(tmp_path, "chain-emergence", {"verdict": booleans, "not_judged": reasons, "verdicts": full})
    finished(tmp_path, "parity-rl", {"verdict": {"length_grows": True, "too_early_fails": False},
                                     "not_judged": {"low_length_grows": "low base gate failed"}}, seeds=(42,))
    return tmp_path


def test_page_counts_and_rows_from_records_and_from_plain_booleans(results, tmp_path):
    runs = results_page.write_page(results, tmp_path / "RESULTS.md")
    page = (tmp_path / "RESULTS.md").read_text()
    assert set(runs) == {"chain-emergence", "parity-rl"}
    assert "| Ran-Milo et al. (2601.15158) | 3 | 1 | 1 | 1 |" in page
    assert "| Tsilivis et al. (2510.11495) | 3 | 1 | 1 | 1 |" in page
    row = next(ln for ln in page.splitlines() if "softmax_m8_test_ge_98" in ln)
    assert "| 99.6% | 0.995 | pass | 0.015 | quick, 42,43 |" in row and "@ abcdef0" in row
    assert "**FAIL** | -0.03 |" in next(ln for ln in page.splitlines() if "linear_m12" in ln)
    assert "not judged: the base failed its gate" in page
    legacy = next(ln for ln in page.splitlines() if "too_early_fails" in ln)
    assert "| — | — | **FAIL** | — | quick, 42 |" in legacy  # an older summary: no value, no margin
    assert "No saved run: `chain-ood`" in page


def test_reference_keeps_summaries_only_and_rebuilds_the_same_page(results, tmp_path):
    ref = tmp_path / "reference"
    for eid in ("chain-emergence", "parity-rl"):
        (run_dir,) = (results / eid).iterdir()
        (run_dir / "arrays.npz").write_bytes(b"big arrays")
        kept = results_page.keep_reference(run_dir, ref)
        assert sorted(p.name for p in kept.iterdir()) == ["DONE", "config.json", "env.json", "summary.json"]
    a = results_page.render({e: results_page.load_run(p) for e, p in results_page.newest_runs(results).items()}, "x")
    b = results_page.render({e: results_page.load_run(p) for e, p in results_page.newest_runs(ref).items()}, "x")
    assert a == b


def test_compare_puts_a_run_beside_the_reference_claim_by_claim(results, tmp_path):
    ref = tmp_path / "reference"
    (ref_run,) = (results / "chain-emergence").iterdir()
    results_page.keep_reference(ref_run, ref)
    mine = tmp_path / "mine"
    records = {"softmax_m8_test_ge_98": V.at_least(0.97, 0.98), "new_claim": V.at_least(1.0, 0.5)}
    booleans, reasons, full = V.split(records)
    run = finished(mine, "chain-emergence", {"verdict": booleans, "verdicts": full})
    text = results_page.compare(run, ref)
    lines = {ln.split()[0]: ln for ln in text.splitlines()[1:]}
    assert "pass 0.995" in lines["softmax_m8_test_ge_98"] and "fail 0.97" in lines["softmax_m8_test_ge_98"]
    assert lines["softmax_m8_test_ge_98"].endswith("status differs")
    assert lines["new_claim"].endswith("only in yours")
    assert lines["linear_m12_test_ge_98"].endswith("only in the reference")
    with pytest.raises(ResultsError, match="no reference run of parity-rl"):
        (other,) = (results / "parity-rl").iterdir()
        results_page.compare(other, ref)


def test_report_writes_the_page_and_skips_figures_of_summary_only_folders(results, tmp_path, capsys):
    ref = tmp_path / "reference"
    for eid in ("chain-emergence", "parity-rl"):
        (run_dir,) = (results / eid).iterdir()
        results_page.keep_reference(run_dir, ref)
    assert cli.main(["report", "--results", str(ref), "--figures", str(tmp_path / "f"),
                     "--page", str(tmp_path / "P.md")]) == 0
    out = capsys.readouterr().out
    assert "chain-emergence: summary only" in out and "results page:" in out and "6 claims of 2" in out
    assert (tmp_path / "P.md").exists() and not (tmp_path / "f").exists()


def test_committed_results_page_is_the_committed_reference_rendered():
    """RESULTS.md at the repository root is regenerated from reference/ only (never edited by hand)."""
    if not (REPO / "reference").is_dir() or not (REPO / "RESULTS.md").exists():
        pytest.skip("no committed reference folder")
    runs = {e: results_page.load_run(p) for e, p in results_page.newest_runs(REPO / "reference").items()}
    assert results_page.render(runs, "reference") == (REPO / "RESULTS.md").read_text()


def test_the_command_names_every_knob_that_differs_from_the_tier(tmp_path):
    """A run made with `--set base.steps=1500 --set base.op_max=8` (and the tier's own seeds) records
    those two leaves unlike the quick tier's: the command column must name them, sorted, so that it
    reruns that run; a leaf equal to the tier's (here seeds) is not repeated."""
    from theoryrl.core.config import to_dict
    from theoryrl.experiments import dag_context_exposure as ctx

    config = json.loads(json.dumps(to_dict(ctx.TIERS["quick"])))
    config["base"] = {**config["base"], "steps": 1500, "op_max": 8}
    record = {"experiment": ctx.ID, "tier": "quick", "config": config}
    folder = tmp_path / ctx.ID / run_id(record)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(record))
    (folder / "summary.json").write_text(json.dumps({"experiment": ctx.ID, "tier": "quick", "verdicts": {}}))
    run = results_page.load_run(folder)
    assert run.overrides == ("base.op_max=8", "base.steps=1500")
    assert run.command == "run dag-context-exposure --tier quick --set base.op_max=8 --set base.steps=1500"
    assert results_page.overrides_of(ctx.ID, "no-such-tier", config) == ()
