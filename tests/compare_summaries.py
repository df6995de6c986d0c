"""Compare the summary.json of two results folders, metric by metric, bitwise.

    python tests/compare_summaries.py OLD NEW [--rows]

OLD and NEW are each either one run folder (holding summary.json) or a folder of run folders
(every sub-folder with a summary.json is compared with the one of the same name). A metric is
"equal" only when both values are the same float (or both null); otherwise the line shows both
values and their difference. Verdicts and claims not judged are compared too, and with --rows
every row field. Keys only in NEW count as added, only in OLD as removed. Exit status 0 when
everything compared is equal, 1 otherwise (2 when nothing could be compared).
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


def compare(old: Path, new: Path, rows: bool = False, out=sys.stdout) -> dict[str, dict[str, int]]:
    """Per section (metric, verdict, not_judged, row): counts of equal, changed, added (only in
    NEW) and removed (only in OLD) keys; every key that is not equal is printed."""
    a, b = json.loads((old / "summary.json").read_text()), json.loads((new / "summary.json").read_text())
    sections = [("metric", a["metrics"], b["metrics"]), ("verdict", a["verdict"], b["verdict"]),
                ("not_judged", a.get("not_judged", {}), b.get("not_judged", {}))]
    if rows:
        flat = lambda s: {f"row{i}.{k}": v for i, r in enumerate(s["rows"]) for k, v in r.items()}  # noqa: E731
        sections.append(("row", flat(a), flat(b)))
    counts = {}
    for what, x, y in sections:
        c = counts[what] = {"equal": 0, "changed": 0, "added": 0, "removed": 0}
        for key in sorted(set(x) | set(y)):
            if key not in y:
                c["removed"] += 1
                print(f"  {what} {key}: removed (was {x[key]!r})", file=out)
            elif key not in x:
                c["added"] += 1
                print(f"  {what} {key}: added ({y[key]!r})", file=out)
            elif (d := _diff_values(x[key], y[key])) is None:
                c["equal"] += 1
            else:
                c["changed"] += 1
                print(f"  {what} {key}: {d}", file=out)
    return counts


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
        counts = compare(old[k], new[k], args.rows)
        for what, c in counts.items():
            print(f"  {what}s: {c['equal']} equal, {c['changed']} changed, {c['added']} added, {c['removed']} removed")
        bad += sum(c["changed"] + c["added"] + c["removed"] for c in counts.values())
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
