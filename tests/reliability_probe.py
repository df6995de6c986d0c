"""Reliability probe of the CLI (issue 21): bad input and damaged folders, classified.

    python tests/reliability_probe.py [--out DIR] [--only inputs|specific|folders]

Not a test (pytest does not collect it): it tries many cases and counts outcomes, for the closing
note of a reliability change. Three groups:
- inputs: every knob of every experiment's quick tier, each given values that are wrong whatever the
  knob means (unparseable text, a non-integer for an int, 1e12 for an int, nan / inf / -inf for a
  float, a repeated seed, a bool that is neither), through `run --dry-run` (validation and the first
  stage's planning, no compute), in-process in one subprocess per experiment;
- specific: the issue's own cases, as real `run` / `sweep` / `plot` / `report` / `bench` calls;
- folders: a tiny real run, then a damaged folder (partial metrics line, deleted metrics, corrupt or
  missing summary / arrays, corrupt checkpoint, kill -9 mid-run, two runs into one folder, read-only
  plot, wrong experiment).

Outcomes: `clear` (exit 2, one `error:` line, no folder left), `ok` (a case meant to succeed did,
with its data intact), `traceback`, `crash` (killed by a signal / native abort), `hang` (timeout),
`silent` (bad input or damaged data accepted without a word), `half_made` (a failed run left a
folder), `data_lost` (a rerun or resume that should equal an uninterrupted run does not).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
TINY = ["--set", "m=3", "--set", "attention=softmax", "--set", "seeds=1",
        "--set", "softmax.batch=64", "--set", "softmax.dataset_size=0", "--set", "softmax.steps_per_epoch=2",
        "--set", "softmax.eval_size=64", "--set", "softmax.early_stop=false",
        "--set", "softmax.epochs_per_chunk=1"]


# ---- group 1: every knob, in-process, one subprocess per experiment ---------------------------------
def bad_values(name: str, value) -> list[str]:
    """Values that are wrong for `name` whatever it means (never a legal setting)."""
    leaf = name.rsplit(".", 1)[-1]
    if isinstance(value, bool):
        return ["maybe"]
    if isinstance(value, int):
        return ["abc", "2.5", "1e12"]
    if isinstance(value, float):
        return ["abc", "nan", "-inf"] + ([] if math.isinf(value) else ["inf"])
    if isinstance(value, tuple):
        out = ["abc", "nan"]
        if leaf == "seeds":
            out += ["5,5", "3000000000"]
        return out
    return []


def knob_leaves(cfg, prefix=""):
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            yield from knob_leaves(v, prefix + f.name + ".")
        else:
            yield prefix + f.name, v


def _inputs_worker(eid: str, done_path: Path) -> None:
    """Runs inside a subprocess: every bad value of every knob of `eid`, in-process; one JSON line per
    case to stdout; a case that kills the process is reported by the parent."""
    import contextlib
    import io
    import traceback

    from theoryrl import cli, experiments

    mod = experiments.get(eid)
    done = set(done_path.read_text().splitlines()) if done_path.exists() else set()
    for knob, value in knob_leaves(mod.TIERS["quick"]):
        for bad in bad_values(knob, value):
            case = f"{eid} {knob}={bad}"
            if case in done:
                continue
            with open(done_path, "a") as fh:  # written first: a native crash names its case
                fh.write(case + "\n")
            err, out = io.StringIO(), io.StringIO()
            signal.alarm(30)
            t0 = time.time()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                    rc = cli.main(["run", eid, "--set", f"{knob}={bad}", "--dry-run"])
                kind = "silent" if rc == 0 else _classify_err(rc, err.getvalue())
            except SystemExit as exc:
                kind = _classify_err(exc.code, err.getvalue())
            except _Alarm:
                kind = "hang"
            except BaseException:  # noqa: BLE001 - the probe's point
                kind = "traceback"
                err.write(traceback.format_exc(limit=2))
            finally:
                signal.alarm(0)
            print(json.dumps({"group": "inputs", "case": case, "kind": kind, "s": round(time.time() - t0, 2),
                              "stderr": err.getvalue()[-300:]}), flush=True)


class _Alarm(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Alarm()


def _classify_err(rc, stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if rc == 2 and len(lines) == 1 and lines[0].startswith("error:"):
        return "clear"
    if "Traceback" in stderr:
        return "traceback"
    return "unclear" if rc else "silent"


def probe_inputs(records: list) -> None:
    from theoryrl import experiments

    for eid in experiments.MODULES:
        done_path = Path(tempfile.mkdtemp()) / "done.txt"
        while True:
            proc = subprocess.run([sys.executable, __file__, "--worker", eid, str(done_path)], env=ENV,
                                  capture_output=True, text=True, timeout=3600)
            for line in proc.stdout.splitlines():
                records.append(json.loads(line))
            if proc.returncode == 0:
                break
            crashed = done_path.read_text().splitlines()[-1]
            records.append({"group": "inputs", "case": crashed, "kind": "crash", "stderr": proc.stderr[-300:]})
        print(f"inputs {eid}: {collections.Counter(r['kind'] for r in records if r['case'].startswith(eid + ' '))}",
              file=sys.stderr, flush=True)


# ---- groups 2 and 3: real CLI calls in a scratch folder ----------------------------------------------
def cli(args, cwd, timeout=600, popen=False):
    cmd = [sys.executable, "-m", "theoryrl", *args]
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def classify_bad(proc, cwd: Path, folder: Path | None = None) -> str:
    """A call that must be refused: clear only if one error line, exit 2, and no folder left."""
    if proc is None:
        return "hang"
    if proc.returncode < 0 or proc.returncode > 128:
        return "crash"
    kind = _classify_err(proc.returncode, proc.stderr)
    left = folder if folder is not None else cwd / "results"
    if kind == "clear" and left.exists() and any(left.rglob("config.json")):
        return "half_made"
    return kind


def specific_cases() -> list[tuple[str, list[str]]]:
    """(name, argv) of the issue's bad inputs; each must be refused with one line before compute."""
    return [
        ("chain-emergence m=200", ["run", "chain-emergence", "--set", "m=200"]),
        ("chain-emergence m=1e12", ["run", "chain-emergence", "--set", "m=1e12"]),
        ("chain-emergence seeds=3000000000", ["run", "chain-emergence", "--set", "seeds=3000000000"]),
        ("chain-emergence seeds=5,5", ["run", "chain-emergence", "--set", "seeds=5,5"]),
        ("bandit-regret arms=1e12", ["run", "bandit-regret", "--set", "arms=1e12"]),
        ("parity-rl d=1e12", ["run", "parity-rl", "--set", "d=1e12"]),
        ("parity-threshold ds=1e12", ["run", "parity-threshold", "--set", "ds=1e12"]),
        ("parity-threshold lam=1e-300", ["run", "parity-threshold", "--set", "lam=1e-300"]),
        ("parity-threshold lam=inf", ["run", "parity-threshold", "--set", "lam=inf"]),
        ("chain-emergence softmax.lr=inf", ["run", "chain-emergence", "--set", "softmax.lr=inf"]),
        ("chain-emergence softmax.tmp=nan", ["run", "chain-emergence", "--set", "softmax.tmp=nan"]),
        ("chain-flow-vs-reinforce record_every=0", ["run", "chain-flow-vs-reinforce", "--set", "record_every=0"]),
        ("chain-flow-vs-reinforce record_every=-3", ["run", "chain-flow-vs-reinforce", "--set", "record_every=-3"]),
        ("sweep repeated grid key", ["sweep", "chain-emergence", *TINY, "--grid", "softmax.lr=0.1",
                                     "--grid", "softmax.lr=0.2"]),
        ("sweep repeated grid value", ["sweep", "chain-emergence", *TINY, "--grid", "softmax.lr=0.1,0.1"]),
        ("sweep equal grid values", ["sweep", "chain-emergence", *TINY, "--grid", "softmax.lr=0.1,0.10"]),
        ("sweep grid seeds with --seeds", ["sweep", "chain-emergence", *TINY, "--grid", "seeds=1,2",
                                           "--seeds", "2"]),
        ("sweep --seeds 3000000000", ["sweep", "chain-emergence", *TINY, "--grid", "softmax.lr=0.1",
                                      "--seeds", "3000000000"]),
        ("run --ckpt-every 0", ["run", "chain-emergence", *TINY, "--ckpt-every", "0"]),
        ("run --data 3", ["run", "chain-emergence", *TINY, "--data", "3"]),
        ("bench unknown", ["bench", "nosuch"]),
        ("report missing --results", ["report", "--results", "no/such/folder"]),
        ("plot, no finished run", ["plot", "chain-ood"]),
        ("run --out under a file", ["run", "chain-emergence", *TINY, "--out", "afile/run"]),
        ("run --out in /proc", ["run", "chain-emergence", *TINY, "--out", "/proc/theoryrl-probe/run"]),
    ]


def probe_specific(records: list) -> None:
    for name, args in specific_cases():
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "afile").write_text("not a folder")
            t0 = time.time()
            proc = cli(args, tmp, timeout=300)
            kind = classify_bad(proc, tmp)
            records.append({"group": "specific", "case": name, "kind": kind, "s": round(time.time() - t0, 1),
                            "stderr": (proc.stderr[-300:] if proc else "timeout")})
            print(f"specific {name}: {kind}", file=sys.stderr, flush=True)


def _arrays_equal(a: Path, b: Path) -> bool:
    import numpy as np

    try:
        x, y = np.load(a), np.load(b)
        return sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)
    except Exception:  # noqa: BLE001 - unreadable counts as unequal
        return False


def probe_folders(records: list) -> None:
    """Damaged folders. `ref` is an uninterrupted tiny run; each case damages a copy or interrupts a run
    and then checks the CLI's answer and the data against `ref`."""
    tmp = Path(tempfile.mkdtemp())
    run = ["run", "chain-emergence", *TINY, "--set", "softmax.epochs=12", "--no-plot", "--quiet"]
    ref = tmp / "ref"
    assert cli([*run, "--out", str(ref)], tmp).returncode == 0
    ref_metrics = len((ref / "metrics.jsonl").read_text().splitlines())

    def add(case, kind, proc=None):
        records.append({"group": "folders", "case": case, "kind": kind,
                        "stderr": (proc.stderr[-300:] if proc is not None else "")})
        print(f"folders {case}: {kind}", file=sys.stderr, flush=True)

    def copy(name):
        dst = tmp / name
        shutil.copytree(ref, dst)
        return dst

    def rerun_equal(d, proc, case):
        if proc is None:
            return add(case, "hang")
        if proc.returncode != 0:
            return add(case, "traceback" if "Traceback" in proc.stderr else "unclear", proc)
        same = _arrays_equal(d / "arrays.npz", ref / "arrays.npz")
        lines = len((d / "metrics.jsonl").read_text().splitlines()) if (d / "metrics.jsonl").exists() else -1
        add(case, "ok" if same and lines == ref_metrics else "data_lost", proc)

    # finished folders with a damaged file: a rerun must name the file (or recompute with --force)
    for case, damage, target in [
        ("corrupt summary.json", lambda d: (d / "summary.json").write_text("{not json"), "summary.json"),
        ("edited summary.json", lambda d: (d / "summary.json").write_text(
            (d / "summary.json").read_text().replace("0", "1", 1)), "summary.json"),
        ("deleted arrays.npz", lambda d: (d / "arrays.npz").unlink(), "arrays.npz"),
        ("garbage arrays.npz", lambda d: (d / "arrays.npz").write_bytes(b"garbage"), "arrays.npz"),
    ]:
        d = copy(case.replace(" ", "_"))
        damage(d)
        proc = cli([*run, "--out", str(d)], tmp)
        named = proc is not None and proc.returncode == 2 and target in proc.stderr
        add(f"{case}: rerun names the file", "clear" if named else classify_bad(proc, tmp, tmp / "none") if proc
            and proc.returncode else "silent", proc)
        proc = cli([*run, "--out", str(d), "--force"], tmp)
        rerun_equal(d, proc, f"{case}: --force recomputes")

    # unfinished folders: resume must heal them
    d = copy("partial_metrics_line")
    (d / "DONE").unlink()
    with open(d / "metrics.jsonl", "a") as fh:
        fh.write('{"bucket": "x", "chu')
    rerun_equal(d, cli([*run, "--out", str(d)], tmp), "partial last metrics line, then resume")
    d = copy("deleted_metrics")
    (d / "DONE").unlink()
    (d / "metrics.jsonl").unlink()
    rerun_equal(d, cli([*run, "--out", str(d)], tmp), "deleted metrics.jsonl, all buckets cached")

    # kill -9 mid-run (with a checkpoint every chunk), then resume
    ck = ["--ckpt-every", "1"]
    for case, after_lines in [("kill -9 after 3 chunks", 3), ("kill -9 after 7 chunks", 7)]:
        d = tmp / case.replace(" ", "_")
        proc = cli([*run[:-1], *ck, "--out", str(d)], tmp, popen=True)
        seen = 0
        for line in proc.stderr:
            seen += " step " in line
            if seen >= after_lines:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=300)
        rerun_equal(d, cli([*run, *ck, "--out", str(d)], tmp), f"{case}, then resume")

    # a corrupt newest checkpoint: resume from the previous one
    for case, damage in [
        ("newest checkpoint: garbage metadata", lambda step: [p.write_text("garbage") for p in step.rglob("*")
                                                               if p.is_file() and "metadata" in p.name]),
        ("newest checkpoint: deleted data files", lambda step: [shutil.rmtree(p) for p in step.iterdir()
                                                                 if p.is_dir()]),
        ("newest checkpoint: truncated manifest", lambda step: [p.write_bytes(p.read_bytes()[:10])
                                                                 for p in step.rglob("*manifest*") if p.is_file()]),
    ]:
        d = tmp / case.split(": ")[1].replace(" ", "_")
        proc = cli([*run[:-1], "--ckpt-every", "2", "--out", str(d)], tmp, popen=True)
        seen = 0
        for line in proc.stderr:
            seen += " step " in line
            if seen >= 9:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=300)
        buckets = [p for p in (d / "ckpt").iterdir()] if (d / "ckpt").exists() else []
        steps = sorted((p for b in buckets for p in b.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        if len(steps) < 2:
            add(case, "skipped (fewer than two checkpoints when killed)")
            continue
        damage(steps[-1])
        rerun_equal(d, cli([*run, "--ckpt-every", "2", "--out", str(d)], tmp), f"{case}, then resume")

    # two runs into one folder at once
    d = tmp / "concurrent"
    long = [*run[:-2], "--set", "softmax.epochs=40", "--quiet", "--out", str(d)]
    a, b = cli(long, tmp, popen=True), None
    time.sleep(6)
    b = cli(long, tmp, popen=True)
    ra, rb = a.wait(timeout=600), b.wait(timeout=600)
    err_b = b.stderr.read()
    lines = len((d / "metrics.jsonl").read_text().splitlines()) if (d / "metrics.jsonl").exists() else -1
    if ra == 0 and lines == 40 and (rb == 0 or (rb == 2 and "error:" in err_b)):
        add("two runs into one folder", "ok")
    else:
        add("two runs into one folder", "data_lost" if ra == 0 and rb == 0 else "traceback"
            if "Traceback" in err_b else "unclear", None)

    # plotting: a read-only run folder, the wrong experiment, a broken folder in report
    d = copy("readonly")
    for p in [d, *d.rglob("*")]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    proc = cli(["plot", "chain-emergence", "--run-dir", str(d), "--figures", str(tmp / "figs")], tmp)
    before = sorted(str(p) for p in d.rglob("*"))
    add("plot a read-only folder (writes only to figures/)", "ok" if proc.returncode == 0 and
        (tmp / "figs" / "chain-emergence.png").exists() and before == sorted(str(p) for p in d.rglob("*"))
        else "unclear", proc)
    proc = cli(["plot", "chain-ood", "--run-dir", str(ref)], tmp)
    add("plot chain-ood given a chain-emergence folder", classify_bad(proc, tmp, tmp / "none") if proc.returncode
        else "silent", proc)
    results = tmp / "res"
    shutil.copytree(ref, results / "chain-emergence" / "good")
    shutil.copytree(ref, results / "chain-ood" / "broken")
    (results / "chain-ood" / "broken" / "summary.json").write_text("{")
    proc = cli(["report", "--results", str(results), "--figures", str(tmp / "rfigs")], tmp)
    ok = "BROKEN" in proc.stdout and (tmp / "rfigs" / "chain-emergence.png").exists()
    add("report past a broken folder", "ok" if ok else ("traceback" if "Traceback" in proc.stderr else "unclear"),
        proc)
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        signal.signal(signal.SIGALRM, _on_alarm)
        _inputs_worker(sys.argv[2], Path(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("probe.jsonl"))
    ap.add_argument("--only", choices=["inputs", "specific", "folders"], default=None)
    args = ap.parse_args()
    records: list[dict] = []
    for group, fn in (("inputs", probe_inputs), ("specific", probe_specific), ("folders", probe_folders)):
        if args.only in (None, group):
            fn(records)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in records))
    totals = collections.Counter(r["kind"] for r in records)
    by_group = {g: dict(collections.Counter(r["kind"] for r in records if r["group"] == g))
                for g in ("inputs", "specific", "folders")}
    print(json.dumps({"cases": len(records), "totals": dict(totals), "by_group": by_group}, indent=1))
    for r in records:
        if r["kind"] not in ("clear", "ok"):
            print(f"  {r['kind']:10s} {r['group']:8s} {r['case']}: {r.get('stderr', '')[-160:]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
