"""DFA under DistributedDataParallel: each rank projects its own error, DDP averages (2 gloo ranks, CPU);
with ``OPUConfig(per_rank_medium=True)`` each rank projects on its own simulated device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PREAMBLE = r"""
import json, sys
import torch, torch.distributed as dist
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from optical_backend import DFA, OPUConfig
from optical_backend.projector import projector_from_state_dict
from optical_backend.toy_models import MLP

rank, world, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
points = ["layers.1", "layers.3"]

def fresh():
    torch.manual_seed(0)
    return MLP(4, (6, 5), 3)

gen = torch.Generator().manual_seed(7)
x, y = torch.randn(2 * world, 4, generator=gen), torch.randn(2 * world, 3, generator=gen)
shards = [(x[2 * r : 2 * r + 2], y[2 * r : 2 * r + 2]) for r in range(world)]
model = DDP(fresh())
"""

WORKER = (
    PREAMBLE
    + r"""
dfa = DFA(model, points, projector="dense", seed=5)
xr, yr = shards[rank]
dfa.backward(F.mse_loss(model(xr), yr))
got = {n: p.grad for n, p in model.module.named_parameters()}

expected = {}
for xs, ys in shards:  # every rank's own DFA update, computed here without DDP, then averaged
    ref = fresh()
    DFA(ref, points, projector="dense", seed=5).backward(F.mse_loss(ref(xs), ys))
    for n, p in ref.named_parameters():
        expected[n] = expected.get(n, 0) + p.grad / world
diff = max(float((got[n] - expected[n]).abs().max()) for n in got)
local_only = max(float((got[n] - 0).abs().max()) for n in got)
print(json.dumps({"rank": rank, "max_diff": diff, "scale": local_only}))
dist.destroy_process_group()
"""
)


def run_ranks(worker: str, tmp_path: Path, world: int = 2) -> list[dict]:
    """Run ``worker`` as ``world`` gloo ranks (file store under ``tmp_path``); each prints one JSON line."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    store = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", worker, str(r), str(world), str(store)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(world)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["rank"] for r in results) == list(range(world))
    return results


def test_ddp_each_rank_projects_its_own_error_and_gradients_are_averaged(tmp_path):
    for r in run_ranks(WORKER, tmp_path):
        assert r["scale"] > 1e-4  # gradients are not trivially zero
        assert r["max_diff"] < 1e-6, r


PER_RANK_WORKER = (
    PREAMBLE
    + r"""
own, shared = OPUConfig(per_rank_medium=True), OPUConfig()
dfa = DFA(model, points, mode="optical", seed=5, opu_config=own)
xr, yr = shards[rank]
dfa.backward(F.mse_loss(model(xr), yr))
got = {n: p.grad for n, p in model.module.named_parameters()}

def averaged(config, per_rank):
    expected = {}
    for r, (xs, ys) in enumerate(shards):  # rank r's update on its own device, then DDP's average
        ref = fresh()
        extra = {"projector_config": {"rank": r}} if per_rank else {}
        DFA(ref, points, mode="optical", seed=5, opu_config=config, **extra).backward(F.mse_loss(ref(xs), ys))
        for n, p in ref.named_parameters():
            expected[n] = expected.get(n, 0) + p.grad / world
    return expected

def distance(a, b):
    return max(float((a[n] - b[n]).abs().max()) for n in a)

rebuilt = projector_from_state_dict(dfa.projector.state_dict())  # as a resumed run rebuilds it on this rank
maps = [None] * world
dist.all_gather_object(maps, dfa.projector.effective_map())
print(json.dumps({"rank": rank, "max_diff": distance(got, averaged(own, True)),
                  "from_shared": distance(got, averaged(shared, False)),
                  "medium_seed": dfa.projector.medium_seed, "rebuilt_seed": rebuilt.medium_seed,
                  "rebuilt_same_map": bool(torch.equal(rebuilt.effective_map(), dfa.projector.effective_map())),
                  "maps_differ": float((maps[0] - maps[1]).abs().max())}))
dist.destroy_process_group()
"""
)


def test_per_rank_medium_gives_each_rank_its_own_device(tmp_path):
    """OPUConfig(per_rank_medium=True): each rank's feedback comes from its own medium (a
    different transmission matrix per rank), DDP averages those updates, and a projector rebuilt
    from the checkpointed state on a rank gets that rank's medium back."""
    results = run_ranks(PER_RANK_WORKER, tmp_path)
    for r in results:
        assert r["max_diff"] < 1e-6, r
        assert r["from_shared"] > 1e-4, r  # not the shared-medium update
        assert r["rebuilt_seed"] == r["medium_seed"] and r["rebuilt_same_map"], r
        assert r["maps_differ"] > 0.1, r  # the two ranks' effective matrices are not the same
    assert results[0]["medium_seed"] != results[1]["medium_seed"]
