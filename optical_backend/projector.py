"""The projector protocol, ``make_projector`` (kinds in ``optical_backend.kinds``) and the dense reference.

A projector is a fixed random linear map ``(..., n_in) -> (..., n_out)``. All backends share
one normalisation: entries behave like i.i.d. N(0, 1/n_out), so that E||P x||^2 = ||x||^2 and
inner products are preserved in expectation (Johnson-Lindenstrauss scaling). (The optical
backend's default anchor read-out scales each output by a fixed random factor of mean square 1:
its entries have variance 1/n_out on average; ``optical_backend.camera``.)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from optical_backend.errors import OpticalConfigError
from optical_backend.kinds import resolve_projector


@dataclass
class ProjectorStats:
    """Counters kept by every projector."""

    calls: int = 0  # number of __call__ invocations
    vectors: int = 0  # input vectors projected
    frames: int = 0  # camera frames (optical backend only)
    device_time_s: float = 0.0  # simulated optical device time
    energy_j: float = 0.0  # simulated optical energy
    wall_time_s: float = 0.0  # measured time spent in __call__ on this machine

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def reset(self) -> None:
        for name, value in asdict(ProjectorStats()).items():
            setattr(self, name, value)


@runtime_checkable
class Projector(Protocol):
    """What every projection backend provides."""

    kind: str
    n_in: int
    n_out: int
    seed: int
    stats: ProjectorStats

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...


class BaseProjector:
    """Shared plumbing: shape checks, flattening of leading dims, dtype handling, counters.

    Subclasses implement ``_project(x)`` on a float32 ``(N, n_in)`` tensor returning ``(N, n_out)``
    and ``config()`` returning a JSON-serialisable dict of their settings.
    """

    kind: str = "base"

    def __init__(self, n_in: int, n_out: int, *, seed: int = 0, device: torch.device | str | None = None):
        if int(n_in) < 1 or int(n_out) < 1:
            raise OpticalConfigError(f"{self.kind} projector: n_in and n_out must be positive, got {n_in} and {n_out}")
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.seed = int(seed)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.stats = ProjectorStats()

    # -- to override -------------------------------------------------------------------------
    def _project(self, x: torch.Tensor) -> torch.Tensor:  # (N, n_in) -> (N, n_out)
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    # -- protocol -----------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.n_in:
            raise OpticalConfigError(
                f"{self.kind} projector expects inputs of size n_in={self.n_in} in the last dimension, got shape {tuple(x.shape)}"
            )
        start = time.perf_counter()
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.n_in).to(device=self.device, dtype=torch.float32)  # (N, n_in)
        with torch.autocast(device_type=self.device.type, enabled=False):
            out = self._project(flat)  # (N, n_out)
        self.stats.calls += 1
        self.stats.vectors += flat.shape[0]
        self.stats.wall_time_s += time.perf_counter() - start
        return out.to(dtype=x.dtype if x.dtype.is_floating_point else torch.float32).reshape(*lead, self.n_out)

    def state_dict(self) -> dict[str, Any]:
        """Seed and configuration only: the matrix is regenerated from them, never stored."""
        return {"kind": self.kind, "n_in": self.n_in, "n_out": self.n_out, "seed": self.seed, "config": self.config()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_in={self.n_in}, n_out={self.n_out}, seed={self.seed}, device={self.device})"


def seeded_generator(seed: int, salt: int = 0) -> torch.Generator:
    """A CPU generator: random draws are identical on every device for a given seed."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed((int(seed) * 1_000_003 + int(salt)) % (2**63 - 1))
    return gen


class DenseProjector(BaseProjector):
    """The reference: a materialised Gaussian matrix with entries N(0, 1/n_out)."""

    kind = "dense"
    max_elements = 2**31  # about 8 GiB of float32; beyond that use "structured" or "optical"

    def __init__(self, n_in: int, n_out: int, *, seed: int = 0, device: torch.device | str | None = None):
        super().__init__(n_in, n_out, seed=seed, device=device)
        if self.n_in * self.n_out > self.max_elements:
            raise OpticalConfigError(
                f"dense projector of {self.n_in}x{self.n_out} would hold {self.n_in * self.n_out:.3g} entries "
                f"(limit {self.max_elements:.3g}); use kind='structured' or 'optical'"
            )
        gen = seeded_generator(self.seed)
        matrix = torch.randn(self.n_in, self.n_out, generator=gen, dtype=torch.float32)  # (n_in, n_out)
        self.matrix = (matrix / self.n_out**0.5).to(self.device)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix  # (N, n_in) @ (n_in, n_out) -> (N, n_out)


def make_projector(
    kind: str, n_in: int, n_out: int, *, seed: int = 0, device: torch.device | str | None = None, **config: Any
) -> Projector:
    """Build a projector ``(..., n_in) -> (..., n_out)`` of the given kind (``dense``, ``structured``, ``optical``
    or a registered kind, ``optical_backend.kinds``)."""
    cls = resolve_projector(kind)
    return cls(n_in, n_out, seed=seed, device=device, **config)


def projector_from_state_dict(state: dict[str, Any], *, device: torch.device | str | None = None) -> Projector:
    """Rebuild a projector from ``state_dict()``: the same seed and configuration give the same map
    (and a projector with random streams continues them from the saved ``position``)."""
    projector = make_projector(
        state["kind"], state["n_in"], state["n_out"], seed=state["seed"], device=device, **state.get("config", {})
    )
    if state.get("position") is not None and hasattr(projector, "restore_position"):
        projector.restore_position(state["position"])
    return projector
