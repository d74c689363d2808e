"""Every projector kind: shared normalisation, linearity, determinism, state dicts, device handling;
the structured backend against the dense reference (distribution and Johnson-Lindenstrauss)."""

from __future__ import annotations

import json

import pytest
import torch
from scipy import stats

from optical_backend import OpticalConfigError, OPUConfig, Projector, make_projector
from optical_backend.hadamard import hadamard_transform, kron_factors, sylvester
from optical_backend.projector import projector_from_state_dict

# noiseless, read through the external arm: Re(T) itself (the anchor's per-output random scale
# would widen the variance test's spread; its statistics: test_speckle_statistics.py)
IDEAL_SCREENS = {"config": OPUConfig.ideal(dense_threshold=0, reference="external-arm")}  # the screen model
IDEAL_DENSE = {"config": OPUConfig.ideal(reference="external-arm")}  # a materialised complex Gaussian T
EXACT_KINDS = [
    pytest.param("dense", {}, id="dense"),
    pytest.param("structured", {}, id="structured"),
    pytest.param("optical", IDEAL_SCREENS, id="optical-ideal-screens"),
    pytest.param("optical", IDEAL_DENSE, id="optical-ideal-dense"),
]
ALL_KINDS = EXACT_KINDS + [pytest.param("optical", {}, id="optical-default")]


@pytest.mark.parametrize("kind,config", EXACT_KINDS)
def test_output_mean_and_variance_match_theory(kind, config):
    """x ~ N(0, I): E[y] = 0 and Var[y_j] = n_in / n_out, over 10^5 samples, within 2%."""
    n_in, n_out, samples = 256, 128, 100_000  # matrix-to-matrix spread of the variance ~ 0.8%
    proj = make_projector(kind, n_in, n_out, seed=11, **config)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(samples, n_in, generator=gen)
    y = proj(x).double()  # (samples, n_out)
    theory_var = n_in / n_out
    assert abs(float(y.mean())) < 0.02 * theory_var**0.5
    assert float(y.var()) == pytest.approx(theory_var, rel=0.02)


@pytest.mark.parametrize("kind,config", EXACT_KINDS)
def test_linearity(kind, config):
    proj = make_projector(kind, 100, 300, seed=2, **config)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 100, generator=gen)
    lhs = proj(2.5 * a - 0.5 * b)
    rhs = 2.5 * proj(a) - 0.5 * proj(b)
    assert torch.allclose(lhs, rhs, rtol=1e-4, atol=1e-4 * float(rhs.abs().max()))


@pytest.mark.parametrize("kind,config", ALL_KINDS)
def test_determinism_by_seed_and_from_state_dict(kind, config):
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(1))
    first = make_projector(kind, 64, 96, seed=7, **config)
    same = make_projector(kind, 64, 96, seed=7, **config)
    other = make_projector(kind, 64, 96, seed=8, **config)
    y = first(x)
    assert y.shape == (3, 5, 96)
    assert torch.equal(y, same(x))
    assert not torch.allclose(y, other(x))

    state = first.state_dict()
    text = json.dumps(state)  # JSON-able: seed and configuration only
    assert len(text) < 2000
    assert not any(isinstance(v, torch.Tensor) for v in state.values())
    rebuilt = projector_from_state_dict(json.loads(text))
    assert isinstance(rebuilt, Projector)
    assert (rebuilt.kind, rebuilt.n_in, rebuilt.n_out, rebuilt.seed) == (kind, 64, 96, 7)
    assert torch.equal(rebuilt(x), first(x))  # the same map, continuing where ``first`` stands (the optical noise too)


@pytest.mark.parametrize("kind,config", ALL_KINDS)
def test_shapes_dtype_and_counters(kind, config):
    proj = make_projector(kind, 10, 20, seed=0, **config)
    y = proj(torch.randn(2, 3, 10, dtype=torch.float64))
    assert y.shape == (2, 3, 20) and y.dtype == torch.float64
    assert proj(torch.randn(10)).shape == (20,)
    assert proj.stats.calls == 2 and proj.stats.vectors == 7 and proj.stats.wall_time_s > 0
    with pytest.raises(OpticalConfigError, match="n_in=10"):
        proj(torch.randn(4, 11))


def test_digital_projectors_count_no_frames():
    for kind in ("dense", "structured"):
        proj = make_projector(kind, 16, 16)
        proj(torch.randn(5, 16))
        assert proj.stats.frames == 0 and proj.stats.device_time_s == 0 and proj.stats.energy_j == 0


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(OpticalConfigError, match="dense, optical, structured"):
        make_projector("holographic", 4, 4)


# -- structured vs dense ------------------------------------------------------------------------
def _inputs(n: int) -> dict[str, torch.Tensor]:
    return {
        "one-hot": torch.eye(n)[3],
        "gaussian": torch.randn(n, generator=torch.Generator().manual_seed(4)),
        "constant": torch.ones(n),
        "ramp": torch.linspace(-1, 1, n),
    }


@pytest.mark.parametrize("n_in,n_out", [(1000, 3000), (4096, 2048)])
def test_structured_matches_dense_distribution(n_in, n_out):
    """Entries of P x: two-sample Kolmogorov-Smirnov against the dense reference, for inputs that
    defeat weak structured transforms (a one-hot or constant vector is a Hadamard basis vector)."""
    structured = make_projector("structured", n_in, n_out, seed=21)
    dense = make_projector("dense", n_in, n_out, seed=21)
    for name, x in _inputs(n_in).items():
        ys, yd = structured(x), dense(x)
        result = stats.ks_2samp(ys.numpy(), yd.numpy())
        assert result.pvalue > 1e-3, (name, result)
        # and both against the exact law N(0, |x|^2 / n_out)
        z = (ys * n_out**0.5 / x.norm()).numpy()
        assert stats.kstest(z, "norm").pvalue > 1e-3, name


def test_structured_without_mixing_would_fail_the_distribution_test():
    """The test above has power: a single Hadamard round maps a one-hot input to +-constant entries."""
    x = torch.eye(1024)[3]
    y = hadamard_transform(x * torch.sign(torch.randn(1024)))
    assert stats.kstest((y * 1024**0.5).numpy(), "norm").pvalue < 1e-6


@pytest.mark.parametrize("kind", ["structured", "dense"])
def test_inner_products_preserved_johnson_lindenstrauss(kind):
    n_in, n_out, k = 3000, 1024, 24
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(k, n_in, generator=gen)
    x[1] = x[0] + 0.3 * x[1]  # a correlated pair
    x = x / x.norm(dim=1, keepdim=True)
    y = make_projector(kind, n_in, n_out, seed=3)(x)
    err = (y @ y.T - x @ x.T).abs()  # (k, k): |<Px, Pz> - <x, z>| for unit vectors
    # JL: deviations of order sqrt(2 / n_out) ~ 0.044; 0.2 leaves a wide margin, yet a wrong
    # normalisation (or a degenerate structured map) exceeds it.
    assert float(err.max()) < 0.2
    assert float(err.mean()) < 0.06


# -- the Hadamard transform behind the structured backend ---------------------------------------
@pytest.mark.parametrize("d", [1, 2, 32, 2048])
def test_kronecker_hadamard_equals_sylvester_matrix(d):
    x = torch.randn(3, d, dtype=torch.float64)
    h = sylvester(d, torch.device("cpu"), torch.float64) / d**0.5
    assert torch.allclose(hadamard_transform(x, max_factor=16), x @ h)
    assert all(f <= 16 for f in kron_factors(d, 16))


# -- devices --------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind,config", EXACT_KINDS)
def test_cuda_matches_cpu(kind, config):
    x = torch.randn(4, 200)
    cpu = make_projector(kind, 200, 300, seed=1, **config)
    gpu = make_projector(kind, 200, 300, seed=1, device="cuda", **config)
    y = gpu(x.cuda())
    assert y.device.type == "cuda"
    assert torch.allclose(y.cpu(), cpu(x), rtol=1e-4, atol=1e-4)
