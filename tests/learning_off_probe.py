"""Learning switched off, every experiment: no verdict may pass (issue 20, last acceptance line).

An independent check, written apart from each experiment's own tests: it runs the real CLI on every
experiment at its quick tier with learning switched off in two ways, and reads only summary.json.
- `zero`: every training length that is a knob is 0 (NTP / RL steps, STaR rounds, epochs, bandit
  horizon, the AR-linear learners' sample budgets, gradient-flow time): the model stays at init.
- `lr0`: every learning rate is 0 with the quick tier's step counts (shortened where a long run
  would add nothing: with lr = 0 every step leaves the parameters as they were). Learners with no
  learning rate (bandit UCB/TS counts, the AR-linear fits, exact flows) are switched off by their
  count knob in this case too; experiments with no learning rate at all have no lr0 case.
A case is `clear` when the run finished and no verdict record has status "pass", `PASSED` when some
verdict passed (the claims are printed), `error` when the run did not finish. Exit status 1 unless
every case is clear. Not part of CI: it takes tens of minutes.

    python tests/learning_off_probe.py --out /tmp/learning_off [--only ID ...] [--mode zero|lr0]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ZERO = {
    "chain-emergence": ["softmax.epochs=0", "linear.epochs=0"],
    "chain-ood": ["softmax.epochs=0", "linear.epochs=0"],
    "chain-simple-vs-hard": ["recipe.epochs=0"],
    "chain-simple-mass": ["recipe.epochs=0"],
    "chain-flow-scaling": ["opts.t_max=1e-3", "opts.t_first=1e-4"],  # the solver needs t_max > 0
    "chain-flow-structure": ["opts.t_max=1e-3", "opts.t_first=1e-4", "full_t_max=2"],  # full-matrix flow: saves from t = 1
    "chain-flow-vs-reinforce": ["sgd_steps=0", "adam_steps=0"],
    "bandit-regret": ["horizon=0"],
    "bandit-diversity": ["rounds=0"],
    "affine-uniform-vs-hard": ["pretrain_steps=0", "reading_steps=0", "rl_steps=0"],
    "parity-threshold": ["head_samples=0", "chain_samples=0", "lm_steps=0"],
    "parity-star": ["rounds=0", "pg_steps=0"],
    "parity-rl": ["pretrain_steps=0", "low_pretrain_steps=0", "rl_steps=0", "star_rounds=0"],
    "parity-leap2": ["steps=0"],
    "parity-separation": ["ntp_steps=0", "pre_steps=0", "rl_steps=0"],
}
LR0 = {
    "chain-emergence": ["softmax.lr=0", "linear.lr=0", "softmax.epochs=10", "linear.epochs=10"],
    "chain-ood": ["softmax.lr=0", "linear.lr=0", "softmax.epochs=10", "linear.epochs=10"],
    "chain-simple-vs-hard": ["recipe.lr=0", "recipe.epochs=16"],  # a multiple of epochs_per_chunk = 8
    "chain-simple-mass": ["recipe.lr=0", "recipe.epochs=10"],  # epochs_per_chunk = 10
    "chain-flow-vs-reinforce": ["sgd_lr=0", "adam_lr=0"],
    "bandit-diversity": ["lr=0"],
    "affine-uniform-vs-hard": ["pretrain_lr=0", "rl_lr=0", "pretrain_steps=500", "reading_steps=0", "rl_steps=100"],
    # the AR-linear learner has no lr: its learning is its sample budget, switched off with it
    "parity-threshold": ["lm.lr=0", "head_samples=0", "chain_samples=0"],
    # STaR has no lr either (eta = 1/(lam t)): its fits are switched off by 0 epochs; the calibrated arm
    # simulates the theory's recursion (no learner) and runs only with rounds > 0, so it is left out here
    "parity-star": ["arms=star,pg", "epochs=0", "pg_lr=0"],
    "parity-rl": ["lm.lr=0", "rl_lr=0", "star_lr=0"],
    "parity-leap2": ["lm.lr=0"],
    "parity-separation": ["lm.lr=0", "rl_lr=0"],
}


def run_case(eid: str, mode: str, sets: list[str], out: Path) -> dict:
    run_dir = out / f"{eid}--{mode}"
    cmd = [sys.executable, "-m", "theoryrl", "run", eid, "--tier", "quick", "--out", str(run_dir), "--no-plot",
           "--quiet", "--force"] + [a for s in sets for a in ("--set", s)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**__import__("os").environ,
                                                                    "THEORYRL_BASES": str(out / "bases")})
    case = {"id": eid, "mode": mode, "sets": sets, "wall_s": round(time.time() - t0, 1), "rc": proc.returncode}
    if proc.returncode != 0:
        case.update(result="error", stderr=proc.stderr.strip().splitlines()[-3:])
        return case
    verdicts = json.loads((run_dir / "summary.json").read_text()).get("verdicts", {})
    counts: dict[str, int] = {}
    for rec in verdicts.values():
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
    passed = sorted(k for k, rec in verdicts.items() if rec["status"] == "pass")
    case.update(result="PASSED" if passed else "clear", counts=counts, passed=passed)
    return case


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--mode", choices=("zero", "lr0"), default=None)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cases = [(eid, mode, table[eid]) for mode, table in (("zero", ZERO), ("lr0", LR0)) for eid in table
             if (args.mode in (None, mode)) and (args.only is None or eid in args.only)]
    results = []
    for eid, mode, sets in cases:
        case = run_case(eid, mode, sets, args.out)
        results.append(case)
        print(json.dumps(case), flush=True)
        (args.out / "learning_off.json").write_text(json.dumps(results, indent=1))
    bad = [c for c in results if c["result"] != "clear"]
    print(f"{len(results)} cases: {len(results) - len(bad)} clear, {len(bad)} not clear", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
