"""Summarise py-spy's collapsed stacks (`--format raw`, as `hmc-broker bench --profile DIR` writes them).

    python -m adapters.bench.profile DIR/forward1-worker0.txt [--top 30] [--under Worker.process]

Prints, per function, the share of samples it was on the stack (inclusive) and at the top (self).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _frame(text: str) -> str:
    """`Session.flush (sqlalchemy/orm/session.py:4626)` -> `Session.flush (sqlalchemy/orm/session.py)`."""
    m = _FRAME.match(text)
    return f"{m['name']} ({m['file']})" if m else text


def summarise(path: Path, under: str | None = None) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        frames = [_frame(f) for f in m["stack"].split(";")]
        if under is not None:
            at = next((i for i, f in enumerate(frames) if f.startswith(under)), None)
            if at is None:
                continue
            frames = frames[at:]
        count = int(m["count"])
        total += count
        for f in set(frames):
            inclusive[f] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--under", help="only stacks through this function, e.g. Worker.process")
    args = parser.parse_args()
    total, inclusive, own = summarise(args.file, args.under)
    if not total:
        raise SystemExit("no samples")
    print(f"{total} samples{f' under {args.under}' if args.under else ''}")
    print("\ninclusive  self  function")
    for name, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:8.1f}% {100 * own[name] / total:5.1f}%  {name}")
    print("\nself (top of stack)")
    for name, n in own.most_common(args.top // 2):
        print(f"{100 * n / total:8.1f}%  {name}")


if __name__ == "__main__":
    main()
