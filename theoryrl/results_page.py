"""RESULTS.md: one page, one table per paper, one row per claim; and a run compared with the reference.

Read from saved summaries only (never recomputed, never typed by hand). A results root has the run
folder layout `<root>/<experiment>/<run_id>/` with `config.json`, `summary.json`, `env.json` and
`DONE`; the newest finished single run (not a sweep) of each experiment is used. The committed
reference folder (`reference/`, summaries only: no arrays, no checkpoints) has the same layout, so
`python -m theoryrl report --results reference` rebuilds RESULTS.md on a fresh clone, and
`python -m theoryrl compare RUN_DIR` puts a user's own run beside the reference, claim by claim.

A claim's row comes from `summary["verdicts"]` (core/verdicts.py: status, value, threshold,
margin, SE, the paper's number) where the experiment records it, else from the plain booleans
`verdict` / `not_judged` of older summaries (then value and margin are shown as "—").
Papers are grouped by the arXiv id in the experiment's PAPER line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

from theoryrl import experiments
from theoryrl.core.config import run_id, to_dict
from theoryrl.core.results import ResultsError, atomic_write_bytes, atomic_write_json

SUMMARY_FILES = ("config.json", "summary.json", "env.json")
PAPER_ORDER = ("2601.15158", "2510.11495", "2512.07783", "2509.06941")  # Ran-Milo, Tsilivis, Zhang, Song et al.


@dataclasses.dataclass(frozen=True)
class Claim:
    experiment: str
    name: str
    status: str          # "pass" | "fail" | "not judged"
    value: object = None
    threshold: object = None
    margin: object = None
    se: object = None
    reason: str = ""
    paper: str = ""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    experiment: str
    run_dir: Path
    run_id: str
    tier: str
    seeds: tuple
    git: str
    claims: tuple[Claim, ...]
    overrides: tuple[str, ...] = ()  # `--set` knobs where the run's config differs from its tier's

    @property
    def command(self) -> str:
        return " ".join([f"run {self.experiment} --tier {self.tier}", *(f"--set {o}" for o in self.overrides)])


def claims_of(summary: dict) -> list[Claim]:
    """Every claim of one summary.json: full records where present, else the plain booleans."""
    eid = summary["experiment"]
    records = summary.get("verdicts") or {}
    out = [Claim(eid, k, r["status"], r.get("value"), r.get("threshold"), r.get("margin"), r.get("se"),
                 r.get("reason", ""), r.get("paper", "")) for k, r in records.items()]
    for k, ok in summary.get("verdict", {}).items():
        if k not in records:
            out.append(Claim(eid, k, "pass" if ok else "fail"))
    for k, reason in summary.get("not_judged", {}).items():
        if k not in records:
            out.append(Claim(eid, k, "not judged", reason=reason))
    return out


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _cli_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_cli_value(v) for v in value)
    return str(value)


def overrides_of(experiment: str, tier: str, config: dict) -> tuple[str, ...]:
    """`knob=value` for every leaf where a run's recorded config differs from its tier's current
    config, so the report's command reruns that run (empty when the tier is unknown)."""
    tiers = getattr(experiments.get(experiment), "TIERS", {})
    if tier not in tiers:
        return ()
    default = _leaves(json.loads(json.dumps(to_dict(tiers[tier]))))
    got = _leaves(config)
    return tuple(f"{k}={_cli_value(got[k])}" for k in sorted(got) if k in default and got[k] != default[k])


def load_run(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError) as err:
        raise ResultsError(f"{run_dir}: cannot read its config.json / summary.json ({err})") from None
    try:
        env = json.loads((run_dir / "env.json").read_text())
    except (OSError, ValueError):
        env = {}
    git_rec = env.get("git") or {}
    git = (git_rec.get("sha") or "unknown")[:7] + ("+dirty" if git_rec.get("dirty") else "")
    tier = summary.get("tier", config.get("tier", "?"))
    return RunSummary(summary["experiment"], run_dir, run_id(config), tier,
                      tuple(config.get("config", {}).get("seeds", ()) or ()), git, tuple(claims_of(summary)),
                      overrides_of(summary["experiment"], tier, config.get("config", {})))


def newest_runs(root: Path) -> dict[str, Path]:
    """experiment id -> its newest finished single-run folder under `root` (sweeps are skipped)."""
    found = {}
    for eid in experiments.MODULES:
        folders = []
        for done in (Path(root) / eid).glob("*/DONE"):
            try:
                if "sweep" in json.loads((done.parent / "config.json").read_text()):
                    continue
            except (OSError, ValueError):
                continue
            folders.append(done.parent)
        if folders:
            found[eid] = max(folders, key=lambda p: (p / "DONE").stat().st_mtime)
    return found


def _fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    x = float(x)
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


def _paper_key(eid: str) -> tuple[str, str]:
    """(arXiv id, authors) from the experiment's PAPER line."""
    text = experiments.get(eid).PAPER
    match = re.search(r"\d{4}\.\d{4,5}", text)
    if not match:
        return ("other", text.split(",")[0])
    return match.group(0), text[:match.start()].strip().rstrip(",")


def render(runs: dict[str, RunSummary], source: str) -> str:
    """The markdown page: counts per paper, then one table per paper."""
    by_paper: dict[tuple[str, str], list[RunSummary]] = {}
    for eid in experiments.MODULES:
        if eid in runs:
            by_paper.setdefault(_paper_key(eid), []).append(runs[eid])
    order = sorted(by_paper, key=lambda k: (PAPER_ORDER.index(k[0]) if k[0] in PAPER_ORDER else 99, k[0]))
    missing = [eid for eid in experiments.MODULES if eid not in runs]
    lines = ["# Results: which claims reproduce", "",
             f"Generated by `python -m theoryrl report` from the saved `summary.json` files under `{source}` "
             "(never typed by hand). One row per claim: the paper's number where the experiment records it, "
             "ours, the status, and the margin (signed distance to the threshold, positive on the passing "
             "side). *not judged* means a precondition failed (the reason is given), e.g. the base model "
             "did not pass its gate. \"—\": not recorded by that experiment's summary yet.", "",
             "| paper | claims | pass | fail | not judged |", "|---|---|---|---|---|"]
    for key in order:
        claims = [c for r in by_paper[key] for c in r.claims]
        count = {s: sum(c.status == s for c in claims) for s in ("pass", "fail", "not judged")}
        lines.append(f"| {key[1]} ({key[0]}) | {len(claims)} | {count['pass']} | {count['fail']} | "
                     f"{count['not judged']} |")
    if missing:
        lines += ["", "No saved run: " + ", ".join(f"`{e}`" for e in missing) + "."]
    for key in order:
        lines += ["", f"## {key[1]} ({key[0]})", "",
                  "| experiment | claim | paper | ours | status | margin | tier, seeds | command | run |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in by_paper[key]:
            seeds = ",".join(str(s) for s in r.seeds) or "—"
            for c in sorted(r.claims, key=lambda c: c.name):
                status = {"pass": "pass", "fail": "**FAIL**", "not judged": "not judged"}[c.status]
                if c.status == "not judged" and c.reason:
                    status += f": {c.reason}"
                ours = _fmt(c.value) + (f" ± {_fmt(c.se)}" if c.se is not None else "")
                lines.append(f"| `{r.experiment}` | {c.name} | {c.paper or '—'} | {ours} | {status} | "
                             f"{_fmt(c.margin)} | {r.tier}, {seeds} | `{r.command}` | "
                             f"`{r.run_id}` @ {r.git} |")
    return "\n".join(lines) + "\n"


def write_page(root: Path, page: Path) -> dict[str, RunSummary]:
    """RESULTS.md from the newest finished run of every experiment under `root`."""
    runs = {eid: load_run(path) for eid, path in newest_runs(root).items()}
    atomic_write_bytes(Path(page), render(runs, str(root)).encode())
    return runs


def keep_reference(run_dir: Path, reference_root: Path) -> Path:
    """Copy a finished run's summaries (config, summary, env; no arrays, no checkpoints) into the
    reference folder, as `<reference>/<experiment>/<run_id>/` with a DONE holding their checksums."""
    run = load_run(run_dir)
    if not (Path(run_dir) / "DONE").exists():
        raise ResultsError(f"{run_dir} is not a finished run (no DONE)")
    target = Path(reference_root) / run.experiment / run.run_id
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in SUMMARY_FILES:
        if (Path(run_dir) / name).exists():
            shutil.copyfile(Path(run_dir) / name, target / name)
    files = {n: hashlib.sha256((target / n).read_bytes()).hexdigest() for n in SUMMARY_FILES if (target / n).exists()}
    atomic_write_json(target / "DONE", {"format": 2, "files": files, "reference": True, "git": run.git})
    return target


def compare(run_dir: Path, reference_root: Path) -> str:
    """A user's run beside the reference run of the same experiment, claim by claim (text table)."""
    mine = load_run(run_dir)
    ref_path = newest_runs(reference_root).get(mine.experiment)
    if ref_path is None:
        raise ResultsError(f"no reference run of {mine.experiment} under {reference_root}")
    ref = load_run(ref_path)
    theirs = {c.name: c for c in ref.claims}
    ours = {c.name: c for c in mine.claims}
    rows = [("claim", f"reference ({ref.tier}, {ref.run_id} @ {ref.git})", f"yours ({mine.tier}, {mine.run_id})", "")]
    for name in sorted(set(theirs) | set(ours)):
        a, b = theirs.get(name), ours.get(name)
        cell = lambda c: "—" if c is None else f"{c.status} {_fmt(c.value)}".rstrip(" —")
        note = "" if a is None or b is None or a.status == b.status else "status differs"
        note = note or ("only in yours" if a is None else "only in the reference" if b is None else "")
        rows.append((name, cell(a), cell(b), note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows) + "\n"
