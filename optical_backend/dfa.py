"""Direct feedback alignment (DFA) for any ``torch.nn.Module``.

Following Nøkland 2016 (arXiv 1609.01596), Launay et al. 2020, "Direct Feedback Alignment
Scales to Modern Deep Learning Tasks and Architectures" (arXiv 2006.12878) and Wang et al.
2024, "Streamlined optical training of large-scale modern deep learning architectures with
direct feedback alignment" (arXiv 2409.12965)::

    dfa = DFA(model, feedback_points=["blocks.*"], mode="dfa", projector="structured")
    loss = loss_fn(model(x), y)
    dfa.backward(loss)        # replaces loss.backward() in every mode
    opt.step()

How an update is made (``mode="dfa"`` or ``"optical"``):

- The output of every feedback point is detached from what follows, so back-propagation stays
  local to the *segment* ending at that point (the point plus any glue code since the previous
  point; the first segment includes the embedding). Everything after the last point (the head)
  receives the true gradient of the loss.
- The global error is e = dLoss/d(output), per sample (``error="sample"``: the whole output of
  one sample, flattened), per token (``error="token"``: output ``(B, T, F)``, feedback outputs
  ``(B, T, D_i)``) or per pixel (``error="pixel"``: output ``(B, C, H, W)``, feedback outputs
  ``(B, D_i, H / f_i, W / f_i)`` for whole factors f_i, as in a UNet; the signal of a coarser point
  is the projected signal averaged over its f_i x f_i cells, times f_i). A token's or a pixel's
  signal then comes from the error at its own place, which a spatially local network can follow;
  a per-sample error mixes every place into every signal.
- ONE projection per step of e gives the signals of all points, each injected as the gradient
  of its point's output. ``feedback="split"``: the projection has n_out = sum_i n_i outputs,
  cut into disjoint slices (an independent feedback matrix per point, as in Nøkland's DFA).
  ``feedback="shared"`` (default): n_out = max_i n_i and point i takes the first n_i outputs
  (the layout of Launay et al.'s TinyDFA). Along a residual stream, as in every Transformer,
  back-propagation gives nearly the same gradient at every block output; independent slices
  cannot all align with it, while a shared one can (on the 4-block TinyViT regression, 200
  AdamW steps: alignment 0.40-0.74 and loss 0.35 shared vs about 0.1 and 0.53 split).
- Normalisation: the projector's entries are N(0, 1/n_out), so the slice for point i has
  E||P_i e||^2 = ||e||^2 n_i / n_out. It is multiplied by
  ``scale * sqrt(n_out / n_i)`` so that **each signal has, per sample (or token), the same
  expected norm as the error**, the magnitude back-propagated gradients have along a residual
  stream whose head is near-isometric. With Adam-type optimisers the overall scale matters
  little; ``scale`` tunes it for SGD.
- A non-finite loss, error or signal raises :class:`NonFiniteError` before any gradient is
  written.

``mode="backprop"`` makes ``dfa.backward(loss)`` a plain ``loss.backward()`` (plus the finite
check), so one training script runs all three modes. Gradient accumulation works as usual
(several forward/backward pairs, then one ``opt.step()``); autocast works (signals take the
dtype of each point's output); under DistributedDataParallel each rank projects its own
error and DDP averages the gradients as in back-propagation.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, is_dataclass
from typing import Any, Callable

import torch
from torch import nn

from optical_backend.dfa_alignment import gradient_alignment
from optical_backend.dfa_records import DFAStats, ForwardRecord, check_finite
from optical_backend.errors import OpticalConfigError
from optical_backend.feedback import FeedbackPoint, FeedbackSpec, first_tensor, resolve_feedback_points, unwrap_model
from optical_backend.kinds import (
    ERROR_GRANULARITY,
    FEEDBACK_LAYOUTS,
    MEMORY_MODES,
    OPTICAL_KIND,
    TRAINING_MODES,
    projector_kinds,
)
from optical_backend.lean import ForwardContext, replay_backward
from optical_backend.projector import make_projector, projector_from_state_dict
from optical_backend.signal_shaping import NORM_VARIANTS, shaped_signals
from optical_backend.whitening import FeedbackWhitening, whitening_for

MODES = TRAINING_MODES


def _sync(t: torch.Tensor | None) -> None:
    if t is not None and t.is_cuda:
        torch.cuda.synchronize(t.device)


class DFA:
    """Train ``model`` by direct feedback alignment (or back-propagation) with one call per step.

    Args:
        model: any module (a DistributedDataParallel wrapper is unwrapped for hooks).
        feedback_points: module names, glob patterns (``"blocks.*"``), module classes (every
            instance) or module instances; they must not nest.
        mode: ``"dfa"`` (digital projection), ``"optical"`` (OPU simulator) or ``"backprop"``.
        projector: projector kind for ``mode="dfa"``: ``"structured"`` or ``"dense"``.
        seed: seed of the random feedback matrix.
        opu_config: ``OPUConfig`` for ``mode="optical"`` (default ``OPUConfig()``).
        memory: ``"standard"`` or ``"lean"`` (see :mod:`optical_backend.lean`).
        error: ``"sample"`` or ``"token"``: granularity of the global error.
        output: name of the sub-module whose output is the prediction (default: the model's).
        scale: multiplier of the documented signal normalisation.
        scale_to: ``"error"`` (signals as large as the error, default) or ``"output"`` (each point's
            signal rescaled to its output's rms on the batch: an adaptive per-block scale).
        signal_dtype: dtype in which lean mode keeps signals (default bfloat16); standard mode
            casts signals to each point's output dtype.
        feedback: ``"shared"`` (default) or ``"split"`` layout of the projection (see above).
        projector_config: extra keyword arguments for ``make_projector``.
        whiten: make the feedback map orthogonal by a small digital matrix (``optical_backend.whitening``).
        norm, norm_variant: the final normalisation the signals are passed back through, and how
            (``optical_backend.signal_shaping``).
    """

    def __init__(
        self,
        model: nn.Module,
        feedback_points: list[FeedbackSpec] | tuple[FeedbackSpec, ...] | FeedbackSpec,
        *,
        mode: str = "dfa",
        projector: str = "structured",
        seed: int = 0,
        opu_config: Any = None,
        memory: str = "standard",
        error: str = "sample",
        output: str | None = None,
        scale: float = 1.0,
        scale_to: str = "error",
        signal_dtype: torch.dtype | None = None,
        feedback: str = "shared",
        projector_config: dict[str, Any] | None = None,
        whiten: bool = False,
        norm: str | None = None,
        norm_variant: str = "vjp",
    ):
        checks = (
            ("mode", mode, MODES),
            ("memory", memory, MEMORY_MODES),
            ("error", error, ERROR_GRANULARITY),
            ("feedback", feedback, FEEDBACK_LAYOUTS),
        )
        for label, value, valid in checks:
            if value not in valid:
                raise OpticalConfigError(f"DFA {label}={value!r} is not one of {', '.join(valid)}")
        if projector not in projector_kinds():
            raise OpticalConfigError(f"DFA projector={projector!r} is not one of {', '.join(projector_kinds())}")
        if scale_to not in ("error", "output") or (scale_to == "output" and memory == "lean"):
            raise OpticalConfigError(f"DFA scale_to={scale_to!r} is not 'error' or (standard memory only) 'output'")
        if not (math.isfinite(scale) and scale > 0):
            raise OpticalConfigError(f"DFA scale must be a positive finite number, got {scale!r}")
        self.model = model
        self.inner = unwrap_model(model)
        if memory == "lean" and self.inner is not model:
            raise OpticalConfigError(
                "DFA memory='lean' does not support DataParallel/DistributedDataParallel wrappers; use memory='standard'"
            )
        self.points: list[FeedbackPoint] = resolve_feedback_points(self.inner, feedback_points)
        self.mode = mode
        self.projector_kind = projector
        self.seed = int(seed)
        self.opu_config = opu_config
        self.memory = memory
        self.error = error
        self.scale = float(scale)
        self.scale_to = scale_to
        self.feedback = feedback
        self.signal_dtype = signal_dtype if signal_dtype is not None else (torch.bfloat16 if memory == "lean" else None)
        self.projector_config = dict(projector_config or {})
        self.output_name = output
        self.norm_name, self.norm_variant = norm, norm_variant
        self._norm = dict(self.inner.named_modules()).get(norm) if norm is not None else None
        if norm is not None and (self._norm is None or memory == "lean" or norm_variant not in NORM_VARIANTS):
            raise OpticalConfigError(
                f"DFA norm={norm!r} must name a sub-module, with memory='standard' and a variant in {NORM_VARIANTS}"
            )
        self.stats = DFAStats()
        self._projector = None
        self.whiten = bool(whiten)
        self._whitening: FeedbackWhitening | None = None  # see optical_backend.whitening
        self._saved_projector: dict[str, Any] | None = None  # from load_state_dict, built lazily
        self._record: ForwardRecord | None = None
        self._replay = None
        self._handles: list[Any] = []
        self._install_hooks()

    # -- hooks ------------------------------------------------------------------------------
    def _install_hooks(self) -> None:
        root = self.inner
        self._handles.append(root.register_forward_pre_hook(self._on_forward_start, with_kwargs=True))
        self._handles.append(root.register_forward_hook(self._on_forward_end, always_call=True))
        out_module = root
        if self.output_name is not None:
            modules = dict(root.named_modules())
            if self.output_name not in modules:
                raise OpticalConfigError(
                    f"DFA output={self.output_name!r} is not a sub-module of {type(root).__name__}"
                )
            out_module = modules[self.output_name]
        self._handles.append(out_module.register_forward_hook(self._on_output))
        for point in self.points:
            self._handles.append(point.module.register_forward_hook(self._point_hook(point.name)))

    def attach(self) -> None:
        """Re-install the hooks after :meth:`remove_hooks`."""
        if not self._handles:
            self._install_hooks()

    def remove_hooks(self) -> None:
        """Detach the engine from the model (it then trains by plain back-propagation)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def _active(self) -> bool:
        return self.mode != "backprop"

    def _on_forward_start(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._replay is not None:
            return
        if not torch.is_grad_enabled():
            self._record = None  # evaluation pass: nothing to record
            return
        first = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)), None)
        _sync(first)
        record = ForwardRecord(started=time.perf_counter())
        if self._active and self.memory == "lean":
            record.context = ForwardContext.capture(args, kwargs)
            record.grad_restored = False
            torch.set_grad_enabled(False)  # no activations kept until the last feedback point
        self._record = record

    def _on_forward_end(self, module: nn.Module, args: tuple, output: object) -> None:
        record = self._record
        if self._replay is not None or record is None:
            return
        if not record.grad_restored:
            torch.set_grad_enabled(record.grad_was_enabled)
            record.grad_restored = True
        _sync(output if isinstance(output, torch.Tensor) else None)
        self.stats.forward_wall_s += time.perf_counter() - record.started

    def _on_output(self, module: nn.Module, args: tuple, output: object) -> None:
        record = self._record
        if self._replay is not None or record is None or not self._active:
            return
        y_hat = first_tensor(output, f"the model output ({type(module).__name__})")
        if not y_hat.requires_grad and y_hat.is_leaf and torch.is_grad_enabled():
            y_hat.requires_grad_(True)  # the output is a detached feedback output: still need dL/dy
        record.y_hat = y_hat

    def _point_hook(self, name: str) -> Callable[[nn.Module, tuple, object], object]:
        def hook(module: nn.Module, args: tuple, output: object) -> object:
            if self._replay is not None:
                return self._replay.on_point(name, output)
            record = self._record
            if record is None or not self._active:
                return None
            y = first_tensor(output, f"feedback point {name!r}")
            if name in record.shapes:
                raise OpticalConfigError(
                    f"feedback point {name!r} ran twice in one forward pass; DFA needs each point to run once per forward"
                )
            record.shapes[name] = (y.shape, y.dtype)
            if self.memory == "lean":
                if len(record.shapes) == len(self.points):
                    torch.set_grad_enabled(record.grad_was_enabled)  # the head builds its graph
                    record.grad_restored = True
                return y.detach()
            if y.requires_grad:
                record.outputs[name] = y
            return y.detach()  # back-propagation stops here; the signal is injected instead

        return hook

    # -- the update -------------------------------------------------------------------------
    def backward(self, loss: torch.Tensor) -> None:
        """Replace ``loss.backward()``: write DFA (or back-propagation) gradients into ``.grad``."""
        start = time.perf_counter()
        if not self._active:
            check_finite(loss.detach(), "loss")
            loss.backward()
            self._record = None
        else:
            self._dfa_backward(loss)
        _sync(loss)
        self.stats.backward_calls += 1
        self.stats.backward_wall_s += time.perf_counter() - start

    def _dfa_backward(self, loss: torch.Tensor) -> None:
        record, self._record = self._record, None
        if record is None or record.y_hat is None:
            raise OpticalConfigError(
                "dfa.backward(loss): no training forward pass was recorded; run model(x) with gradients enabled first"
            )
        missing = [p.name for p in self.points if p.name not in record.shapes]
        if missing:
            raise OpticalConfigError(
                f"dfa.backward(loss): feedback points {', '.join(missing)} did not run in the forward pass"
            )
        (error,) = torch.autograd.grad(loss, record.y_hat, retain_graph=True, allow_unused=True)
        if error is None:
            raise OpticalConfigError(
                "dfa.backward(loss): the loss does not depend on the output of the latest forward pass"
            )
        check_finite(
            torch.cat([loss.detach().reshape(1).float(), error.detach().reshape(-1).float()]), "loss or output error"
        )
        self.stats.samples += error.shape[0]
        if self.memory == "lean":
            signals = self._signals(error.detach(), record.shapes, chunk_like_one_point=True)  # checked finite first
            loss.backward()  # then the true gradient of the head
            replay_backward(self.inner, record.context, signals, self._set_replay)
        else:
            signals = shaped_signals(self, self._signals(error.detach(), record.shapes), record.outputs)
            roots = [loss] + [record.outputs[n] for n in signals if n in record.outputs]
            grads = [None] + [signals[n] for n in signals if n in record.outputs]
            torch.autograd.backward(roots, grads)  # one engine pass: head + every local segment

    def _set_replay(self, state) -> None:
        self._replay = state

    def _signals(
        self,
        error: torch.Tensor,
        shapes: dict[str, tuple[torch.Size, torch.dtype]],
        *,
        chunk_like_one_point: bool = False,
    ) -> dict[str, torch.Tensor]:
        """One projection of the error, split into the normalised signal of every point."""
        if self.error == "pixel":
            return self._pixel_signals(error, shapes, chunk_like_one_point)
        if self.error == "token" and error.dim() < 2:
            raise OpticalConfigError(f"error='token' needs an output of shape (B, T, ...), got {tuple(error.shape)}")
        return self._row_signals(error, shapes, 1 if self.error == "sample" else 2, chunk_like_one_point)

    def _row_signals(
        self,
        error: torch.Tensor,
        shapes: dict[str, tuple[torch.Size, torch.dtype]],
        lead: int,
        chunk_like_one_point: bool,
    ) -> dict[str, torch.Tensor]:
        """Project each row of the error (its first ``lead`` dims: per sample or per token) to the points."""
        rows = error.reshape(math.prod(error.shape[:lead]), -1)  # (B, n_e) per sample, (B*T, F) per token
        sizes = []
        for point in self.points:
            shape = shapes[point.name][0]
            if tuple(shape[:lead]) != tuple(error.shape[:lead]):
                raise OpticalConfigError(
                    f"feedback point {point.name!r} output {tuple(shape)} does not share the leading "
                    f"{'batch' if lead == 1 else '(batch, token)'} dims of the model output {tuple(error.shape)}"
                )
            sizes.append(math.prod(shape[lead:]))
        n_out = sum(sizes) if self.feedback == "split" else max(sizes)
        projector = self._get_projector(rows.shape[1], n_out, rows.device)
        chunk = rows.shape[0]
        if chunk_like_one_point:  # bound the projection's workspace to about one point's signal
            chunk = max(1, math.ceil(rows.shape[0] * max(sizes) / n_out))
        # One signal per distinct (size, dtype) in the shared layout: equal-sized points share one
        # tensor (the same entries, the same scale) instead of a copy each; one per point when split.
        dtypes = [self.signal_dtype or shapes[p.name][1] for p in self.points]
        keys = list(range(len(sizes))) if self.feedback == "split" else [(n, d) for n, d in zip(sizes, dtypes)]
        first = {key: i for i, key in reversed(list(enumerate(keys)))}  # key -> first point index
        pieces: dict[object, list[torch.Tensor]] = {key: [] for key in first}
        for rows_chunk in rows.split(chunk):
            projected = self._whitening.project(projector, rows_chunk) if self._whitening else projector(rows_chunk)
            split = projected.split(sizes, dim=-1) if self.feedback == "split" else None
            for key, i in first.items():
                piece = split[i] if split is not None else projected[..., : sizes[i]]
                pieces[key].append((piece * (self.scale * math.sqrt(n_out / sizes[i]))).to(dtypes[i]))
            del projected
        joined = {key: parts[0] if len(parts) == 1 else torch.cat(parts) for key, parts in pieces.items()}
        pieces.clear()
        signals = {point.name: joined[key].reshape(shapes[point.name][0]) for point, key in zip(self.points, keys)}
        check_finite(
            torch.stack([s.detach().float().abs().amax() for s in signals.values()]), "projected feedback signal"
        )
        return signals

    def _pixel_signals(
        self, error: torch.Tensor, shapes: dict[str, tuple[torch.Size, torch.dtype]], chunk_like_one_point: bool
    ) -> dict[str, torch.Tensor]:
        """Per-pixel projection of a field error (B, C, H, W) to points (B, D_i, H / f_i, W / f_i).

        A pixel is a token: the rows are projected at full resolution like per-token errors (one
        shared signal for equal points), then coarser points average their f_i x f_i cells (times f_i).
        """
        if error.dim() != 4:
            raise OpticalConfigError(f"error='pixel' needs an output of shape (B, C, H, W), got {tuple(error.shape)}")
        b, c, h, w = error.shape
        factors = []
        for point in self.points:
            shape = shapes[point.name][0]
            f = h // shape[-2] if len(shape) == 4 and shape[-2] else 0
            if len(shape) != 4 or shape[0] != b or f < 1 or shape[-2] * f != h or shape[-1] * f != w:
                raise OpticalConfigError(
                    f"feedback point {point.name!r} output {tuple(shape)} is not (B, D, H/f, W/f) of the model output {tuple(error.shape)} "
                    "for a whole factor f; error='pixel' needs field-shaped feedback points"
                )
            factors.append(f)
        tokens = error.permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, H*W, C)
        full = {p.name: (torch.Size([b, h * w, shapes[p.name][0][1]]), shapes[p.name][1]) for p in self.points}
        flat = self._row_signals(tokens, full, 2, chunk_like_one_point)  # (B, H*W, D_i) each
        signals = {}
        for point, f in zip(self.points, factors):
            signal = flat[point.name].reshape(b, h, w, -1).permute(0, 3, 1, 2)  # (B, D_i, H, W)
            if f > 1:
                signal = (torch.nn.functional.avg_pool2d(signal.float(), f) * f).to(signal.dtype)  # (B, D_i, H/f, W/f)
            signals[point.name] = signal
        return signals

    def _get_projector(self, n_in: int, n_out: int, device: torch.device):
        if self._projector is None and self._saved_projector is not None:
            self._projector = projector_from_state_dict(self._saved_projector, device=device)
            self._saved_projector = None
            self.stats.projector = self._projector.stats
        if self._projector is None:
            self._projector = self._build_projector(n_in, n_out, device)
            self.stats.projector = self._projector.stats
        if self.whiten and self._whitening is None:
            self._whitening = whitening_for(self._projector)
        if (self._projector.n_in, self._projector.n_out) != (n_in, n_out):
            raise OpticalConfigError(
                f"DFA error/feedback sizes changed from {self._projector.n_in}->{self._projector.n_out} to {n_in}->{n_out}; "
                "per-sample sizes must stay fixed (use error='token' for variable sequence lengths)"
            )
        return self._projector

    def _build_projector(self, n_in: int, n_out: int, device: torch.device):
        config = dict(self.projector_config)
        if self.mode == "optical":
            from optical_backend.opu import OPUConfig

            config.setdefault("config", self.opu_config if self.opu_config is not None else OPUConfig())
            return make_projector(OPTICAL_KIND, n_in, n_out, seed=self.seed, device=device, **config)
        return make_projector(self.projector_kind, n_in, n_out, seed=self.seed, device=device, **config)

    def feedback_map(self, n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
        """(n_in, n_out): the linear map of the feedback projection, whitened where it is (noiseless)."""
        from optical_backend.dfa_init import effective_map

        raw = effective_map(self._get_projector(n_in, n_out, device)).to(device=device, dtype=torch.float32)
        return self._whitening.of_map(raw) if self._whitening else raw

    @property
    def projector(self):
        """The projector (built at the first DFA step, once the sizes are known), or None."""
        return self._projector

    # -- diagnostics ------------------------------------------------------------------------
    def alignment(self, x: Any, y: Any, loss_fn: Callable[[Any, Any], torch.Tensor]) -> dict[str, float]:
        """Per feedback point, the cosine between the DFA and the back-propagation gradient.

        Over the parameters of each point's *segment* (those its signal reaches: the point's
        module plus glue code since the previous point), both gradients are computed on the same
        weights and batch (same random state, buffers restored). The model's ``.grad`` values,
        the random state and all counters are left as they were; the model is not copied.
        Segments without trainable parameters get NaN.
        """
        return self.alignment_of(lambda: loss_fn(self.model(x), y))

    def alignment_of(self, compute_loss: Callable[[], torch.Tensor]) -> dict[str, float]:
        """:meth:`alignment` for a closure that runs the model's forward pass and returns the loss.

        For models called with several arguments (``lambda: task.loss(model, batch)``).
        """
        return gradient_alignment(self, compute_loss)

    # -- persistence ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Settings and the projector's seed/config (never a matrix); JSON-able."""
        opu = self.opu_config
        return {
            "mode": self.mode,
            "projector": self.projector_kind,
            "seed": self.seed,
            "memory": self.memory,
            "error": self.error,
            "scale": self.scale,
            "feedback": self.feedback,
            "feedback_points": [p.name for p in self.points],
            "opu_config": asdict(opu) if is_dataclass(opu) else opu,
            "projector_state": self._projector.state_dict() if self._projector is not None else self._saved_projector,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the projector (same seed and config give the same feedback matrix)."""
        names = [p.name for p in self.points]
        if list(state.get("feedback_points", names)) != names:
            raise OpticalConfigError(
                f"DFA state has feedback points {state.get('feedback_points')}, this engine has {names}"
            )
        self.seed = int(state["seed"])
        self.scale = float(state.get("scale", self.scale))
        self.projector_kind = state.get("projector", self.projector_kind)
        self.feedback = state.get("feedback", self.feedback)
        self.error = state.get("error", self.error)
        self._projector, self._whitening = None, None  # rebuilt from the saved seed/config at the next step
        self._saved_projector = state.get("projector_state")

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.points)
        return f"DFA(mode={self.mode!r}, projector={self.projector_kind!r}, memory={self.memory!r}, points=[{names}])"
