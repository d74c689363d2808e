"""DFA under DistributedDataParallel: each rank projects its own error, DDP averages (2 gloo ranks, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, sys
import torch, torch.distributed as dist
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from optical_backend import DFA
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


def test_ddp_each_rank_projects_its_own_error_and_gradients_are_averaged(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    store = tmp_path / "store"
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(r), "2", str(store)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["rank"] for r in results) == [0, 1]
    for r in results:
        assert r["scale"] > 1e-4  # gradients are not trivially zero
        assert r["max_diff"] < 1e-6, r
