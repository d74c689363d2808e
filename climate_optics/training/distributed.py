"""Data parallel training under ``torchrun``: the process group, gradient averaging, safety checks.

Every rank holds a full copy of the model. The loop broadcasts rank 0's initial weights, each
rank computes its own loss and gradients on its shard of the global batch (in DFA and optical
modes each rank projects its own error), and the gradients are averaged across ranks after
``engine.backward(loss)``, so every rank applies the same update.

Why not ``torch.nn.parallel.DistributedDataParallel``: its reducer hooks into autograd and
expects exactly one backward pass over the wrapped module per forward. The DFA engine's lean
memory mode replays the detached segments in separate backward passes (it refuses DDP
wrappers), the wrapper renames every module (``module.``), which feedback-point names and
checkpoint keys would have to follow, and one explicit all-reduce after the engine's backward
is correct for every mode alike. What this gives up is DDP's overlap of communication with the
backward pass; gradients are all-reduced in a few flat buckets instead of one call per tensor.
"""

from __future__ import annotations

import atexit
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist

from climate_optics.errors import UsageInputError

BUCKET_BYTES = 32 * 2**20  # gradients are all-reduced in flat buffers of at most this size


@dataclass(frozen=True)
class World:
    """This process's place among the data parallel ranks (a single process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # index of the accelerator this rank uses on its node

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and progress."""
        return self.rank == 0


def world_from_env() -> World:
    """The ``torchrun`` environment (WORLD_SIZE, RANK, LOCAL_RANK); a single process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(rank=int(os.environ.get("RANK", "0")), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def join(world: World, device: torch.device) -> World:
    """Start (or join an already started) process group: NCCL for CUDA devices, gloo for CPU.

    A group started here lives until the process exits (then ``destroy_process_group``): later
    ``train`` calls in the same process (the downscaler's two stages) reuse it, because starting
    a second default group under ``torchrun``'s shared store is not reliable.
    """
    if world.size <= 1:
        return world

    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
    if dist.get_world_size() != world.size:
        raise UsageInputError(
            f"WORLD_SIZE={world.size} but the running process group has {dist.get_world_size()} ranks"
        )
    return replace(world, rank=dist.get_rank())


def _leave() -> None:
    """End the process group (no collective: safe after an error on any rank)."""

    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""

    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def _buckets(tensors: Iterable[torch.Tensor], limit: int) -> Iterator[list[torch.Tensor]]:
    """Consecutive runs of tensors sharing dtype and device, each at most ``limit`` bytes (or one tensor)."""
    bucket: list[torch.Tensor] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if bucket and (t.dtype != bucket[0].dtype or t.device != bucket[0].device or size + nbytes > limit):
            yield bucket
            bucket, size = [], 0
        bucket.append(t)
        size += nbytes
    if bucket:
        yield bucket


def average_gradients(parameters: Iterable[torch.nn.Parameter], world: World, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Replace every ``.grad`` by its mean over the ranks, one all-reduce per flat bucket.

    Every rank must hold gradients for the same parameters (the same code ran on every rank).
    """

    grads = [p.grad for p in parameters if p.grad is not None]
    for bucket in _buckets(grads, bucket_bytes):
        flat = torch.cat([g.reshape(-1) for g in bucket])  # (n,) one buffer for the whole bucket
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world.size
        offset = 0
        for g in bucket:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def gather_losses(loss: torch.Tensor, world: World) -> torch.Tensor:
    """Every rank's loss (world,), so that all ranks see a non-finite loss on any one of them."""
    value = loss.detach().float().reshape(1)  # (1,)
    if world.size <= 1:
        return value

    out = [torch.empty_like(value) for _ in range(world.size)]
    dist.all_gather(out, value)
    return torch.cat(out)  # (world,)


DIGEST_ROW = 4096  # a tensor's 32-bit words are hashed as rows of this many columns
DIGEST_CHUNK_ROWS = 64  # rows per pass: a 1 MiB working buffer, in cache on a CPU
_COLUMN_WEIGHTS: dict[torch.device, torch.Tensor] = {}


def _odd_weights(index: torch.Tensor, salt: int) -> torch.Tensor:
    """Odd pseudo-random 32-bit weights of integer ``index`` (int64, any shape) as int32 (same shape)."""
    mixed = (index * 0x9E3779B1 + salt) & 0xFFFFFFFF  # a multiplicative hash, in int64 without overflow
    mixed = ((mixed ^ (mixed >> 15)) * 0x2C1B3C6D) & 0xFFFFFFFF
    mixed = (mixed ^ (mixed >> 12)) | 1  # odd: a unit modulo 2^32
    return (mixed - ((mixed >> 31) << 32)).to(torch.int32)  # the same residue in int32's range: an exact cast


def _words(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bits as a flat int32 tensor on its device (a view where its byte size allows)."""
    flat = tensor.detach().contiguous().reshape(-1)
    if flat.element_size() in (4, 8):
        return flat.view(torch.int32)  # float32/int32 words; 8-byte elements as two words each
    width = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[flat.element_size()]
    return flat.view(width).to(torch.int32)  # 1- and 2-byte elements widened (an injective map)


def tensor_checksum(tensor: torch.Tensor) -> torch.Tensor:
    """A 32-bit checksum of a tensor's bits, computed where the tensor lives: () int32.

    With the words ``x`` as rows ``r`` of ``DIGEST_ROW`` columns ``c``, the checksum is
    sum_r v_r sum_c w_c x_rc modulo 2^32, ``w`` and ``v`` odd pseudo-random weights. Odd numbers
    are units modulo 2^32, so a change of any single word always changes it; changes of several
    words cancel with a chance of about 2^-32. Integer arithmetic: the same on every device and
    in every reduction order.
    """
    x = _words(tensor)  # (n,) int32
    device = x.device
    if device not in _COLUMN_WEIGHTS:
        _COLUMN_WEIGHTS[device] = _odd_weights(torch.arange(DIGEST_ROW, device=device), salt=0x7F4A7C15)
    w = _COLUMN_WEIGHTS[device]  # (DIGEST_ROW,) int32
    rows = -(-x.numel() // DIGEST_ROW)
    v = _odd_weights(torch.arange(rows, device=device), salt=0x165667B1)  # (rows,) int32
    total = torch.zeros((), dtype=torch.int32, device=device)
    full = x.numel() // DIGEST_ROW
    for r0 in range(0, full, DIGEST_CHUNK_ROWS):
        block = x[r0 * DIGEST_ROW : min(full, r0 + DIGEST_CHUNK_ROWS) * DIGEST_ROW].view(
            -1, DIGEST_ROW
        )  # (R, DIGEST_ROW)
        total += ((block * w).sum(1, dtype=torch.int32) * v[r0 : r0 + block.shape[0]]).sum(dtype=torch.int32)
    tail = x[full * DIGEST_ROW :]  # (n mod DIGEST_ROW,): the last, partial row
    if tail.numel():
        total += (tail * w[: tail.numel()]).sum(dtype=torch.int32) * v[full]
    return total


def weights_digest(module: torch.nn.Module) -> tuple[list[str], torch.Tensor]:
    """The state dict's names and a digest computed on the module's device, without copying it:
    (T + 8,) int32, one ``tensor_checksum`` per entry, then sha256 of the names, dtypes and shapes."""
    state = module.state_dict()
    device = next(iter(module.parameters()), torch.empty(0)).device
    layout = "".join(f"{name}:{t.dtype}:{tuple(t.shape)};" for name, t in state.items()).encode()
    meta = torch.frombuffer(bytearray(hashlib.sha256(layout).digest()), dtype=torch.int32).to(device)  # (8,)
    sums = [tensor_checksum(t).to(device) for t in state.values()]
    return list(state), torch.cat([torch.stack(sums) if sums else meta[:0], meta])


def check_same_weights(module: torch.nn.Module, world: World, step: int) -> None:
    """Raise on every rank if any rank's weights differ bit for bit from rank 0's (a collective).

    Each rank gathers every rank's ``weights_digest`` (32 bits per tensor), computed on its device:
    the weights themselves never leave it.
    """
    if world.size <= 1:
        return

    names, mine = weights_digest(module)  # (T + 8,)
    everyone = [torch.empty_like(mine) for _ in range(world.size)]
    dist.all_gather(everyone, mine)
    differ = [r for r, d in enumerate(everyone) if not torch.equal(d, everyone[0])]
    if differ:
        where = (everyone[differ[0]] != everyone[0]).nonzero().flatten().tolist()
        first = names[where[0]] if where[0] < len(names) else "the names, dtypes or shapes of the state dict"
        ranks = ", ".join(map(str, differ))
        raise RuntimeError(
            f"data parallel ranks diverged at step {step}: the weights of rank(s) {ranks} differ from "
            f"rank 0's (first in {first})"
        )


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()
