"""The end-to-end pipeline: ingest -> per mode train + forecast -> evaluate (-> downscale -> evaluate on
the fine grid) -> report, published as Prefect artifacts.

The same steps, in the same order, as ``climate_optics.pipeline.run_pipeline`` (what
``climate-optics demo --no-prefect`` runs); each step here is a Prefect task with its retries
and cache, so a failed run can be re-run and skips what is already done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from climate_optics.cluster import dask_cluster
from climate_optics.pipeline import PipelineResult, StageClock, downscale_window, prepare_run_dir, score_modes
from climate_optics.run_layout import DEMO_SOURCE, PipelineConfig
from climate_optics.workflow import climatology_period, downscaler_checkpoint, hires_options
from data_catalog import locks
from flows.downscale import downscale_with_baseline, train_downscaler_task
from flows.evaluate import evaluate
from flows.forecast import forecast
from flows.ingest import ingest
from flows.train import train_forecaster_task

ARTIFACT_KEY = "climate-optics-report"  # Prefect artifact keys: lowercase letters, digits and dashes


@task(name="report", cache_policy=NO_CACHE)
def report_task(run_dir: str) -> str:
    """``climate_optics.report.write_report``: report.html and report.md beside the stores."""
    from climate_optics.report import write_report

    return str(write_report(run_dir))


def publish_artifacts(result: PipelineResult) -> None:
    """The skill table, the report (Markdown) and links to the report and the stores, as Prefect artifacts."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    from climate_optics.report import skill_rows

    rows = skill_rows(result.scores)
    if rows:
        create_table_artifact(rows, key=f"{ARTIFACT_KEY}-skill", description="Skill against lead time per model (global)")
    if result.report is not None:
        markdown = result.report.with_suffix(".md").read_text()
        create_markdown_artifact(markdown, key=ARTIFACT_KEY, description="The run's report (report.md)")
        create_link_artifact(Path(result.report).resolve().as_uri(), link_text="report.html", key=f"{ARTIFACT_KEY}-html",
                             description="The self-contained report")
    stores = "\n".join(f"- {name}: [{path}]({path})" for name, path in result.paths().items())
    create_markdown_artifact(f"# Outputs of {result.run_dir}\n\n{stores}\n", key=f"{ARTIFACT_KEY}-outputs",
                             description="Where the run's stores are")


@flow(name="climate-optics-pipeline", log_prints=True)
def pipeline_flow(run_dir: str, modes: list[str] | None = None, mode: str | None = None, steps: int = 200,
                  source: str = DEMO_SOURCE, options: dict[str, Any] | None = None, downscale: bool | None = None,
                  settings: dict[str, Any] | None = None, overwrite: bool = False,
                  resume: bool = False, dask_workers: int | None = None, dask_address: str | None = None) -> dict[str, str]:
    """Run the pipeline into ``run_dir``; ``settings`` holds further ``PipelineConfig`` fields.

    ``modes``: training modes trained side by side (default backprop and optical; ``mode`` for one).
    ``resume=True`` continues an interrupted run in ``run_dir``: finished steps come from the
    task cache, training resumes from its last checkpoint.
    ``dask_workers``/``dask_address``: ingest and score on a dask cluster (one ``LocalCluster`` of N
    workers for the whole run, or a running scheduler); training and inference run in this process.
    Returns the paths written (``PipelineResult.paths``): data, ``checkpoint-<mode>``,
    ``forecast-<mode>``, scores, report; with downscaling also the downscaler run, the fine truth
    (``hires``), the downscaled ensemble, its bilinear baseline and their scores on the fine grid.
    """
    values = {"source": source, "options": options, "modes": modes, "mode": mode, "steps": steps, "downscale": downscale}
    config = PipelineConfig(**{k: v for k, v in values.items() if v is not None} | (settings or {}))
    clock = StageClock()
    with locks.holding(run_dir), dask_cluster(dask_workers, dask_address) as address:  # one writer per run directory
        with clock("ingest"):
            period = climatology_period(config)  # opens the source: a bad one fails before anything is written
            layout = prepare_run_dir(run_dir, config, overwrite=overwrite, resume=resume)
            data = ingest(config.source, layout.data, options=config.options, variables=config.variables,
                          levels=config.levels, climatology_period=period, overwrite=overwrite, dask_address=address)
        checkpoints, forecasts = {}, {}
        for m in config.modes:
            with clock(f"train {m}"):
                checkpoints[m] = train_forecaster_task(data, str(layout.train_run(m)), **config.train_options(m))
            with clock(f"forecast {m}"):
                forecasts[m] = forecast(checkpoints[m], data, layout.forecast_of(m), lead_hours=list(config.lead_hours),
                                        max_inits=config.max_inits, overwrite=overwrite)
        with clock("score"):
            kwargs = score_modes(config, layout)
            scores = evaluate(kwargs.pop("forecast"), data, layout.scores, overwrite=overwrite, dask_address=address, **kwargs)
        result = PipelineResult(layout.root, data, checkpoints, forecasts, scores)
        if config.downscale:
            m = config.downscale_mode
            with clock("ingest fine grid"):
                result.hires = hires = ingest(config.source, layout.hires, options=hires_options(config),
                                              variables=config.variables, levels=config.levels, climatology_period=period,
                                              overwrite=overwrite, dask_address=address)
            with clock(f"train downscaler {m}"):
                result.downscale = train_downscaler_task(hires, str(layout.downscale_run(m)), mode=m, projector=config.projector,
                                                         preset=config.preset, steps=config.downscale_steps,
                                                         diffusion_steps=config.downscale_diffusion_steps,
                                                         batch_size=config.batch_size, lr=config.lr, seed=config.seed)
            start, end = downscale_window(forecasts[m], config.downscale_max_inits)
            with clock(f"downscale {m}"):
                result.downscaled, result.bilinear = downscale_with_baseline(
                    str(downscaler_checkpoint(result.downscale)), forecasts[m], layout.downscaled_of(m), layout.bilinear,
                    members=config.downscale_members, steps=config.downscale_sampler_steps, seed=config.seed, start=start, end=end,
                    overwrite=overwrite)
            with clock("score fine grid"):
                result.downscaled_scores = evaluate(result.downscaled, hires, layout.downscaled_scores, metrics=config.metrics,
                                                    regions=config.regions, references=[result.bilinear], overwrite=overwrite,
                                                    dask_address=address)
        clock.save(layout.timings)  # the report shows the stage times
        with clock("report"):
            result.report = Path(report_task(str(layout.root)))
        result.stage_seconds = clock.seconds
        clock.save(layout.timings)
        publish_artifacts(result)
        print(f"report: {result.report}")
        return result.paths()
