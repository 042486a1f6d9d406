"""The pure stages' cost in instructions, which valgrind counts the same whatever else the machine is doing.

    python -m adapters.bench.instructions [read|translate|floor ...] [--orders N]

Each stage is run twice under `valgrind --tool=callgrind`, once over no orders and once over N, in a child
process; the difference over N is its instructions per bench order (start-up, imports and the first order's
schema and binding set-up cancel out). Timed figures on a shared 2-core machine spread by a factor of two;
these do not, so a change to a stage can be judged by them alone. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

from lxml import etree

from adapters.bench.data import Data
from broker.contract import safe_xml
from broker.contract.dialect import DIALECTS, read
from broker.model.codes import Side
from broker.translation import forward

STAGES = ("read", "translate", "floor")


def run(stage: str, count: int) -> None:
    """Run `stage` over `count` bench orders (what valgrind measures)."""
    bodies = [s.body for s in Data("instructions").orders(max(count, 1))]
    first = read(bodies[0]).message  # schemas and bindings are built once per process: not counted
    if first is None:
        raise SystemExit("the bench order did not read as valid")
    sesam2, customer = DIALECTS[Side.SESAM2], DIALECTS[Side.CUSTOMER]
    sesam2.render(forward(first))
    if stage == "read":
        for body in bodies[:count]:
            read(body)
    elif stage == "translate":
        # Reading them is counted too: `measure` subtracts a run that only reads ("translate-base").
        messages = [m for b in bodies[:count] if (m := read(b).message) is not None]
        for message in messages:
            sesam2.render(forward(message))
    elif stage == "translate-base":
        for body in bodies[:count]:
            read(body)
    elif stage == "floor":
        parser, xsd = safe_xml.parser(), customer.compiled_schema
        for body in bodies[:count]:
            xsd.validate(etree.fromstring(body, parser))


def instructions(stage: str, count: int) -> int:
    """Instructions of a child process running `stage` over `count` orders, as callgrind counts them."""
    child = [sys.executable, "-m", "adapters.bench.instructions", "--run", stage, "--orders", str(count)]
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *child], capture_output=True, text=True
    )
    out = done.stderr
    if done.returncode != 0:
        raise SystemExit(f"{stage} over {count} orders failed under valgrind:\n{out[-2000:]}")
    found = re.search(r"Collected : (\d+)", out)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{out[-2000:]}")
    return int(found.group(1))


def measure(stage: str, count: int) -> float:
    """Instructions per order of `stage`."""
    if stage == "translate":
        return (instructions("translate", count) - instructions("translate-base", count)) / count
    return (instructions(stage, count) - instructions(stage, 0)) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", help=f"of {', '.join(STAGES)} (default: all three)")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--run", help=argparse.SUPPRESS)  # the child's stage
    args = parser.parse_args()
    if args.run:
        run(args.run, args.orders)
        return
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        parser.error(f"no such stage: {', '.join(sorted(unknown))} (stages: {', '.join(STAGES)})")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    counts = {stage: measure(stage, args.orders) for stage in args.stages or STAGES}
    for stage, per_order in counts.items():
        print(f"{stage:10s} {per_order:12,.0f} instructions per order")
    if {"read", "translate", "floor"} <= counts.keys():
        ratio = (counts["read"] + counts["translate"]) / counts["floor"]
        print(f"(read + translate) / floor: {ratio:.1f}")


if __name__ == "__main__":
    main()
