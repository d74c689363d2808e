"""The end-to-end pipeline: ingest -> train -> forecast -> evaluate (-> downscale -> evaluate on the fine grid).

The same steps, in the same order, as ``climate_optics.workflow.run_pipeline`` (what
``climate-optics demo`` runs without ``--prefect``); each step here is a Prefect task with
its retries and cache, so a failed run can be re-run and skips what is already done.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from climate_optics.workflow import DEMO_SOURCE, PipelineConfig, downscaler_checkpoint, hires_options, prepare_run_dir
from flows.downscale import downscale_with_baseline, train_downscaler_task
from flows.evaluate import evaluate
from flows.forecast import forecast
from flows.ingest import ingest
from flows.train import train_forecaster_task


@flow(name="climate-optics-pipeline", log_prints=True)
def pipeline_flow(run_dir: str, mode: str = "backprop", steps: int = 200, source: str = DEMO_SOURCE,
                  options: dict[str, Any] | None = None, downscale: bool = False,
                  settings: dict[str, Any] | None = None, overwrite: bool = False,
                  resume: bool = False) -> dict[str, str]:
    """Run the pipeline into ``run_dir``; ``settings`` holds further ``PipelineConfig`` fields.

    ``resume=True`` continues an interrupted run in ``run_dir``: finished steps come from the
    task cache, training resumes from its last checkpoint.
    Returns the paths written: data, checkpoint, forecast, scores; with ``downscale`` also the
    downscaler run (``downscale``), the fine truth (``hires``), the downscaled ensemble forecast
    (``downscaled``), its bilinear baseline (``bilinear``) and the scores of both against the
    fine truth (``downscaled_scores``).
    """
    config = PipelineConfig(**{"source": source, "options": options, "mode": mode, "steps": steps,
                               "downscale": downscale, **(settings or {})})
    layout = prepare_run_dir(run_dir, config, overwrite=overwrite, resume=resume)
    train = dict(mode=config.mode, projector=config.projector, preset=config.preset, batch_size=config.batch_size,
                 lr=config.lr, seed=config.seed)

    data = ingest(config.source, layout.data, options=config.options, variables=config.variables,
                  levels=config.levels, overwrite=overwrite)
    checkpoint = train_forecaster_task(data, str(layout.train), model=config.model, steps=config.steps, **train)
    forecast_store = forecast(checkpoint, data, layout.forecast, lead_hours=list(config.lead_hours),
                              max_inits=config.max_inits, overwrite=overwrite)
    scores = evaluate(forecast_store, data, layout.scores, metrics=config.metrics, regions=config.regions,
                      overwrite=overwrite)
    outputs = {"run_dir": str(layout.root), "data": data, "checkpoint": checkpoint, "forecast": forecast_store,
               "scores": scores}
    if config.downscale:
        hires = ingest(config.source, layout.hires, options=hires_options(config), variables=config.variables,
                       levels=config.levels, overwrite=overwrite)
        outputs["hires"] = hires
        outputs["downscale"] = train_downscaler_task(hires, str(layout.downscale), steps=config.downscale_steps,
                                                     diffusion_steps=config.downscale_diffusion_steps, **train)
        outputs["downscaled"], outputs["bilinear"] = downscale_with_baseline(
            str(downscaler_checkpoint(outputs["downscale"])), forecast_store, layout.downscaled, layout.bilinear,
            members=config.downscale_members, steps=config.downscale_sampler_steps, seed=config.seed, overwrite=overwrite)
        outputs["downscaled_scores"] = evaluate(outputs["downscaled"], hires, layout.downscaled_scores, metrics=config.metrics,
                                                regions=config.regions, references=[outputs["bilinear"]], overwrite=overwrite)
    print("\n".join(f"{name}: {path}" for name, path in outputs.items()))
    return outputs
