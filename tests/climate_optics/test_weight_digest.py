"""The on-device weight digest of the data parallel check: what it computes, and what it detects.

The two-rank check itself (a 1e-7 change on rank 1 raises on every rank) runs under torchrun in
test_distributed_training.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from climate_optics.training.distributed import (
    DIGEST_CHUNK_ROWS,
    DIGEST_ROW,
    _odd_weights,
    tensor_checksum,
    weights_digest,
)


def reference_checksum(tensor: torch.Tensor) -> int:
    """sum_r v_r sum_c w_c x_rc mod 2^32 in numpy uint64, the weights taken from the same hash."""
    raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy()  # the bytes
    words = raw.view({1: np.uint8, 2: np.int16, 4: np.int32, 8: np.int32}[tensor.element_size()]).astype(np.int32)
    x = words.astype(np.int64) & 0xFFFFFFFF  # the words modulo 2^32
    n = x.size
    rows = -(-n // DIGEST_ROW)
    w = _odd_weights(torch.arange(DIGEST_ROW), salt=0x7F4A7C15).numpy().astype(np.int64) & 0xFFFFFFFF
    v = _odd_weights(torch.arange(rows), salt=0x165667B1).numpy().astype(np.int64) & 0xFFFFFFFF
    padded = np.zeros(rows * DIGEST_ROW, dtype=np.int64)
    padded[:n] = x
    row_sums = (padded.reshape(rows, DIGEST_ROW) * w % 2**32).sum(axis=1) % 2**32  # products < 2^64 / 2^32 each
    total = int((row_sums * v % 2**32).sum() % 2**32)
    return total - 2**32 if total >= 2**31 else total  # as int32


@pytest.mark.parametrize(
    "n", [1, DIGEST_ROW - 1, DIGEST_ROW, 3 * DIGEST_ROW + 17, (DIGEST_CHUNK_ROWS + 2) * DIGEST_ROW + 5]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool])
def test_checksum_equals_the_reference_formula(n, dtype):
    g = torch.Generator().manual_seed(n)
    values = torch.randn(n, generator=g) * 1e3
    tensor = values > 0 if dtype is torch.bool else values.to(dtype)
    assert int(tensor_checksum(tensor)) == reference_checksum(tensor)


def test_any_single_word_change_is_detected():
    g = torch.Generator().manual_seed(1)
    tensor = torch.randn(5 * DIGEST_ROW + 123, generator=g)  # rows, chunks and a partial last row
    base = int(tensor_checksum(tensor))
    words = tensor.view(torch.int32)
    for index in torch.randint(0, tensor.numel(), (200,), generator=g).tolist() + [0, tensor.numel() - 1]:
        for bit in (0, 13, 31):  # lowest mantissa bit, a middle one, the sign
            changed = words.clone()
            changed[index] ^= torch.tensor(1 << bit, dtype=torch.int64).to(torch.int32)
            assert int(tensor_checksum(changed.view(torch.float32))) != base, (index, bit)
    swapped = tensor.clone()
    swapped[[7, 7 + DIGEST_ROW]] = swapped[[7 + DIGEST_ROW, 7]]  # the same column in two rows
    assert int(tensor_checksum(swapped)) != base


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.LayerNorm(200), torch.nn.Linear(200, 2))


def test_digest_names_every_tensor_and_finds_the_changed_one():
    a, b = model(), model()
    names, da = weights_digest(a)
    assert names == list(a.state_dict()) and da.shape == (len(names) + 8,) and da.dtype == torch.int32
    assert torch.equal(da, weights_digest(b)[1])  # same weights: same digest
    with torch.no_grad():
        b[2].bias[0] += 1e-7  # one float, one ulp-sized change
    db = weights_digest(b)[1]
    assert [names[i] for i in (da != db).nonzero().flatten().tolist()] == ["2.bias"]
    c = torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.LayerNorm(200), torch.nn.Linear(200, 2, bias=False))
    with torch.no_grad():
        for p, q in zip(c.parameters(), a.parameters()):
            p.copy_(q)
    assert not torch.equal(weights_digest(c)[1][-8:], da[-8:])  # another layout: the layout part differs
