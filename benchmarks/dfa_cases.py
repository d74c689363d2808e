"""DFA vs back-propagation on the same ViT at depths 4, 12 and 24: step time and peak memory.

Rows (``dfa_rows(quick)``, appended by ``bench_projection.py``; also ``python benchmarks/dfa_cases.py``):

- ``step time``: median seconds per training step (forward + backward), methods interleaved on
  one model; ratio = DFA / back-propagation; targets <= 1.05 (structured projector) and
  <= 1.15 (optical simulator). Informative rows: the per-sample, split-layout projection (the
  OPU-scale case: one vector of all blocks' sizes per sample) and lean DFA.
- ``peak memory``: MiB a training step adds above the weights, inputs and gradient buffers,
  each case in a fresh process (see ``dfa_measure``); ratio = lean DFA / back-propagation
  (target <= 0.3 at depth 24) and lean DFA / back-propagation with per-block checkpointing
  (target < 1).
- the learning curves of back-propagation, standard and lean DFA are written to
  ``benchmarks/results/dfa_learning_curves.json`` and ``.png``.

The ViT uses per-token errors and the shared feedback layout (the settings that learn on
Transformers, see ``optical_backend.dfa``). ``--quick`` uses depths 4 and 12 only, fewer
rounds and a shorter curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dfa_measure as measure  # noqa: E402
from benchkit import Row, results_dir, write_results  # noqa: E402

NAME = measure.NAME


def _rows_from(records: list[dict]) -> list[Row]:
    return [Row(**r) for r in records]


def curve_records(size: str, steps: int, device: str = "cpu") -> list[dict]:
    curves = measure.learning_curves(
        measure.vit_sizes(4, "tiny" if size == "tiny" else "cpu") | {"dim": 32}, steps, device
    )
    out = results_dir()
    (out / "dfa_learning_curves.json").write_text(json.dumps(curves) + "\n")
    measure.plot_curves(curves, out / "dfa_learning_curves.png")
    tail = max(1, steps // 10)
    final = {k: sum(v[-tail:]) / tail for k, v in curves.items()}
    return [
        dict(
            benchmark=NAME,
            case="learning curve: final loss, dfa lean vs dfa standard",
            ours=final["dfa-lean"],
            reference=final["dfa-structured"],
            unit="mse",
            ratio=final["dfa-lean"] / final["dfa-structured"],
        ),
        dict(
            benchmark=NAME,
            case="learning curve: final loss, dfa standard vs backprop",
            ours=final["dfa-structured"],
            reference=final["backprop"],
            unit="mse",
            ratio=final["dfa-structured"] / final["backprop"],
        ),
    ]


def dfa_records(quick: bool, size: str = "cpu", device: str = "cpu") -> list[dict]:
    depths = (4, 12) if quick else (4, 12, 24)
    records: list[dict] = []
    for depth in depths:
        records += measure.time_records(depth, size, rounds=3 if quick else 7, device=device)
        records += measure.memory_records(depth, size, device=device)
    records += curve_records(size, steps=60 if quick else 200, device=device)
    return records


def dfa_rows(quick: bool) -> list[Row]:
    """Rows for ``bench_projection.py``."""
    return _rows_from(dfa_records(quick))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="depths 4 and 12, fewer rounds")
    args = parser.parse_args()
    write_results(NAME, dfa_rows(args.quick))


if __name__ == "__main__":
    main()
