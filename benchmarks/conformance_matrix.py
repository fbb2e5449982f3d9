"""The charter conformance matrix (/admin/conformance, `telerad conformance`): how long its cold analysis takes.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/conformance_matrix.py [--json]

It measures, in CPU seconds (other processes' load does not count):

- ``cold_cpu_s``: the whole analysis without the per-process cache (the first page view after a start),
  median of 3; target < 3 s, so that the suite and the first view stay quick;
- ``graph_cpu_s``: in the same run, building the code graph alone, the part that grows with the code base;
- ``ratio_cold_vs_graph``: how much the rest of the analysis adds to it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.services import conformance  # noqa: E402
from engine.services.conformance_build import build_graph  # noqa: E402
from web.config import PROJECT_ROOT  # noqa: E402

RUNS = 3


def cpu_seconds(action) -> float:  # noqa: ANN001 - a callable without arguments
    started = time.process_time()
    action()
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args()

    def cold() -> None:
        conformance._code_facts.cache_clear()
        conformance.conformance_matrix(PROJECT_ROOT)

    cold_s = statistics.median(cpu_seconds(cold) for _ in range(RUNS))
    graph_s = statistics.median(cpu_seconds(lambda: build_graph(PROJECT_ROOT)) for _ in range(RUNS))
    result = {"cold_cpu_s": round(cold_s, 3), "graph_cpu_s": round(graph_s, 3),
              "ratio_cold_vs_graph": round(cold_s / graph_s, 2) if graph_s else None,
              "targets": {"cold_cpu_s < 3": cold_s < 3}}
    if options.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
