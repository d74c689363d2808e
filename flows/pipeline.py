"""The end-to-end pipeline: ingest -> per mode train + forecast -> evaluate (-> downscale -> evaluate on
the fine grid) -> report, published as Prefect artifacts.

The steps are ``climate_optics.pipeline.run_pipeline``'s (what ``climate-optics demo --no-prefect``
runs), each run here as a Prefect task with its retries and cache (``FLOW_STEPS``), so a failed
run can be re-run and skips what is already done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from climate_optics.pipeline import PipelineResult, Steps, run_pipeline
from climate_optics.report import skill_rows, write_report
from climate_optics.run_layout import DEMO_SOURCE, PipelineConfig
from flows.downscale import downscale_with_baseline, train_downscaler_task
from flows.evaluate import evaluate
from flows.forecast import forecast
from flows.ingest import ingest
from flows.train import train_forecaster_task

ARTIFACT_KEY = "climate-optics-report"  # Prefect artifact keys: lowercase letters, digits and dashes


@task(name="report", cache_policy=NO_CACHE)
def report_task(run_dir: str) -> str:
    """``climate_optics.report.write_report``: report.html and report.md beside the stores."""

    return str(write_report(run_dir))


# The pipeline's steps as Prefect tasks (retries, cache): the step list itself is climate_optics.pipeline's.
FLOW_STEPS = Steps(
    ingest=ingest,
    train_forecaster=train_forecaster_task,
    forecast=forecast,
    score=evaluate,
    train_downscaler=train_downscaler_task,
    downscale=downscale_with_baseline,
    report=report_task,
)


def publish_artifacts(result: PipelineResult) -> None:
    """The skill table, the report (Markdown) and links to the report and the stores, as Prefect artifacts."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    rows = skill_rows(result.scores)
    if rows:
        create_table_artifact(
            rows, key=f"{ARTIFACT_KEY}-skill", description="Skill against lead time per model (global)"
        )
    if result.report is not None:
        markdown = result.report.with_suffix(".md").read_text()
        create_markdown_artifact(markdown, key=ARTIFACT_KEY, description="The run's report (report.md)")
        create_link_artifact(
            Path(result.report).resolve().as_uri(),
            link_text="report.html",
            key=f"{ARTIFACT_KEY}-html",
            description="The self-contained report",
        )
    stores = "\n".join(f"- {name}: [{path}]({path})" for name, path in result.paths().items())
    create_markdown_artifact(
        f"# Outputs of {result.run_dir}\n\n{stores}\n",
        key=f"{ARTIFACT_KEY}-outputs",
        description="Where the run's stores are",
    )


@flow(name="climate-optics-pipeline", log_prints=True)
def pipeline_flow(
    run_dir: str,
    modes: list[str] | None = None,
    mode: str | None = None,
    steps: int = 200,
    source: str = DEMO_SOURCE,
    options: dict[str, Any] | None = None,
    downscale: bool | None = None,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    dask_workers: int | None = None,
    dask_address: str | None = None,
) -> dict[str, str]:
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
    values = {
        "source": source,
        "options": options,
        "modes": modes,
        "mode": mode,
        "steps": steps,
        "downscale": downscale,
    }
    config = PipelineConfig(**{k: v for k, v in values.items() if v is not None} | (settings or {}))
    result = run_pipeline(
        config,
        run_dir,
        overwrite=overwrite,
        resume=resume,
        dask_workers=dask_workers,
        dask_address=dask_address,
        steps=FLOW_STEPS,
    )
    publish_artifacts(result)
    print(f"report: {result.report}")
    return result.paths()
