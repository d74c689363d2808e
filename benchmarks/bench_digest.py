"""The weight-digest check before each data parallel checkpoint, on the ``base`` forecaster (about 100M parameters).

Ours: ``climate_optics.training.distributed.weights_digest``, a 32-bit checksum per tensor computed
where the weights live (nothing copied off the device). Reference: what the check did before, a
copy of every tensor to host memory and sha256 over the bytes. Both run alternately on the same
model, best of N each; the ratio is reference / ours (a time). On a GPU machine pass
``--device cuda``: the reference then includes the device-to-host copy.

    python benchmarks/bench_digest.py [--quick] [--device cpu|cuda] [--preset base]
"""

from __future__ import annotations

import argparse
import hashlib
import time

import torch
from benchkit import Row, write_results

from climate_optics.models.forecaster import PRESETS, Forecaster, ForecasterConfig
from climate_optics.training.distributed import weights_digest

NAME = "digest"


def host_sha256(module: torch.nn.Module) -> bytes:
    """The reference: every tensor copied to host memory, then sha256 of names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()


def on_device(module: torch.nn.Module) -> torch.Tensor:
    digest = weights_digest(module)[1]
    if digest.is_cuda:
        torch.cuda.synchronize()
    return digest


def timed(fn, module: torch.nn.Module, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(module)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--preset", default="base", choices=sorted(PRESETS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Forecaster(ForecasterConfig(**PRESETS[args.preset])).to(args.device)
    mib = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    on_device(model), host_sha256(model)  # warm-up: weights, kernels, allocator
    ours, reference = [], []
    for _ in range(3 if args.quick else 7):  # alternated, so both see the same machine load
        ours += timed(on_device, model, 1)
        reference += timed(host_sha256, model, 1)
    case = f"weight digest, {args.preset} forecaster ({mib:.0f} MiB of weights, {args.device}, 1 thread): on device vs host copy + sha256"
    row = Row(NAME, case, min(ours), min(reference), "s", ratio=min(reference) / min(ours), target="ratio >= 1")
    write_results(NAME, [row])


if __name__ == "__main__":
    main()
