"""Whitened feedback: the DFA projection turned into an orthogonal map (times its rms gain).

DFA sends an error ``e`` (n_in,) to the network as ``e @ M`` with ``M`` (n_in, n_out) the
projection's linear map. How well the network learns from that signal depends on ``M``'s
singular values, not only on its randomness: on the tiny forecaster a dense Gaussian ``M``
(condition number 7 at 160 -> 96) trains to a clearly worse Z500 forecast than the structured
orthogonal one (4), and the optical device's anchor read-out, whose output columns carry the
Rayleigh-distributed reference amplitude, is worse still (28; docs/dfa_training.md). With
``M = U S V^T`` the whitened map is ``g U V^T`` (g the rms of ``S``: the signal keeps its size):
every direction of the error reaches the network with the same gain.

The medium cannot be changed, so the correction is digital and small: a matrix on the smaller
side of the projection, ``Q = U diag(g / S) U^T`` (n_in, n_in) applied to the error before it
is projected when n_in <= n_out, else ``R = V diag(g / S) V^T`` (n_out, n_out) applied to the
projection; at most ``min(n_in, n_out)^2`` multiply-adds per vector, never more than the
projection's own ``n_in * n_out``. ``M`` is measured once per run (for the optical device, the
``n_in`` basis vectors shown once: counted as device time by ``OpticalProjector``). The gain of a
direction is capped at ``MAX_GAIN``, so that a near-null direction does not amplify the device's
noise without bound. Maps larger than ``MAX_ENTRIES`` are left as they are.
"""

from __future__ import annotations

import torch

MAX_GAIN = 10.0
MAX_ENTRIES = 2**25  # n_in * n_out: 128 MB as float32, an SVD of at most a few thousand columns


class FeedbackWhitening:
    """The digital matrices that whiten a feedback map ``M`` (n_in, n_out)."""

    def __init__(self, feedback_map: torch.Tensor):
        n_in, n_out = feedback_map.shape
        u, s, vh = torch.linalg.svd(feedback_map.double(), full_matrices=False)  # (n_in, k), (k,), (k, n_out)
        rms = s.square().mean().sqrt()
        gain = rms / s.clamp_min(rms / MAX_GAIN)  # (k,)
        self.before: torch.Tensor | None = None  # (n_in, n_in), applied to the error rows
        self.after: torch.Tensor | None = None  # (n_out, n_out), applied to the projection
        if n_in <= n_out:
            self.before = ((u * gain) @ u.T).float()
        else:
            self.after = ((vh.T * gain) @ vh).float()
        self.condition_before = float(s.max() / s.min().clamp_min(1e-30))
        self.condition_after = float((s * gain).max() / (s * gain).min().clamp_min(1e-30))

    def project(self, projector, rows: torch.Tensor) -> torch.Tensor:
        """``rows`` (N, n_in) -> (N, n_out) through the projector and the whitening."""
        if self.before is not None:
            rows = rows @ self.before.to(rows.device, rows.dtype)
        projected = projector(rows)
        if self.after is not None:
            projected = projected @ self.after.to(projected.device, projected.dtype)
        return projected

    def of_map(self, feedback_map: torch.Tensor) -> torch.Tensor:
        """The whitened map (n_in, n_out) of the raw one."""
        if self.before is not None:
            return self.before.to(feedback_map.device) @ feedback_map
        return feedback_map @ self.after.to(feedback_map.device)


def whitening_for(projector) -> FeedbackWhitening | None:
    """The whitening of a projector's map, measured once; None when the map is too large."""
    if projector.n_in * projector.n_out > MAX_ENTRIES:
        return None
    from optical_backend.dfa_init import effective_map

    feedback_map = effective_map(projector).float()  # (n_in, n_out)
    if hasattr(projector, "count_measurement"):
        projector.count_measurement(projector.n_in)  # on a device, the basis vectors are shown once
    return FeedbackWhitening(feedback_map)
