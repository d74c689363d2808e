"""The errors DFA projects for a forecast task, taken where the DFA engine takes them.

``error="sample"``: d(loss)/d(prediction) of one sample, flattened; ``error="token"``:
d(loss)/d(output of the task's feedback output module) of one token. Used to check the optical
encoding on real errors (``optical_backend.diagnostics.encoding_gain``).
"""

from __future__ import annotations

import numpy as np
import torch

from climate_optics.training.forecast_task import ForecastTask


def forecaster_errors(
    task: ForecastTask, *, steps: int = 20, batch_size: int = 8, lr: float = 1e-3, seed: int = 0
) -> dict[str, torch.Tensor]:
    """After ``steps`` back-propagation steps on ``task`` (AdamW), one sample's error ``(C H W,)``
    and the error of the token with the largest one ``(patch values,)``, from one further batch."""
    torch.manual_seed(seed)
    model = task.model
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    stream = task.batches(np.random.default_rng(seed), batch_size)
    for _ in range(steps):
        opt.zero_grad()
        task.loss(model, next(stream)).backward()
        opt.step()
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, args, output):
            output.retain_grad()
            outputs[name] = output

        return hook

    head = dict(model.named_modules())[task.feedback_output]
    handles = [model.register_forward_hook(keep("sample")), head.register_forward_hook(keep("token"))]
    try:
        opt.zero_grad()
        task.loss(model, next(stream)).backward()
    finally:
        for handle in handles:
            handle.remove()
        opt.zero_grad()
    tokens = outputs["token"].grad[0]  # (T, patch values)
    return {
        "sample": outputs["sample"].grad[0].flatten().detach().clone(),  # (C H W,)
        "token": tokens[int(tokens.norm(dim=-1).argmax())].detach().clone(),  # the token with most to clip
    }
