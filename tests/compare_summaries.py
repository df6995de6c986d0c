"""Compare the summary.json of two results folders, metric by metric, bitwise.

    python tests/compare_summaries.py OLD NEW [--rows]

OLD and NEW are each either one run folder (holding summary.json) or a folder of run folders
(every sub-folder with a summary.json is compared with the one of the same name). A metric is
"equal" only when both values are the same float (or both null); otherwise the line shows both
values and their difference. Verdicts are compared too, and with --rows every row field.
Exit status 0 when everything compared is equal, 1 otherwise (2 when nothing could be compared).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _folders(root: Path) -> dict[str, Path]:
    if (root / "summary.json").exists():
        return {root.name: root}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "summary.json").exists()}


def _diff_values(a, b) -> str | None:
    if a == b or (a is None and b is None):
        return None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return f"{a!r} -> {b!r} (diff {b - a:+.3g})"
    return f"{a!r} -> {b!r}"


def compare(old: Path, new: Path, rows: bool = False, out=sys.stdout) -> tuple[int, int]:
    """(equal, different) counts over metrics, verdicts and optionally row fields."""
    a, b = json.loads((old / "summary.json").read_text()), json.loads((new / "summary.json").read_text())
    equal = different = 0
    sections = [("metric", a["metrics"], b["metrics"]), ("verdict", a["verdict"], b["verdict"])]
    if rows:
        flat = lambda s: {f"row{i}.{k}": v for i, r in enumerate(s["rows"]) for k, v in r.items()}  # noqa: E731
        sections.append(("row", flat(a), flat(b)))
    for what, x, y in sections:
        for key in sorted(set(x) | set(y)):
            if key not in x or key not in y:
                print(f"  {what} {key}: only in {'old' if key in x else 'new'}", file=out)
                different += 1
                continue
            d = _diff_values(x[key], y[key])
            if d is None:
                equal += 1
            else:
                different += 1
                print(f"  {what} {key}: {d}", file=out)
    return equal, different


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--rows", action="store_true", help="also compare every row field")
    args = p.parse_args(argv)
    old, new = _folders(args.old), _folders(args.new)
    shared = [k for k in old if k in new]
    for k in sorted(set(old) ^ set(new)):
        print(f"{k}: only in {'old' if k in old else 'new'}")
    if not shared:
        print("nothing to compare")
        return 2
    bad = 0
    for k in shared:
        print(f"{k}:")
        eq, diff = compare(old[k], new[k], args.rows)
        print(f"  {eq} equal, {diff} different{' (bitwise equal)' if diff == 0 else ''}")
        bad += diff
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
