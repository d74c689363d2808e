"""The whole pipeline, timed stage by stage: one list of steps for both ways of running it.

``run_pipeline`` runs the steps of ``climate_optics.workflow`` in order, either as plain calls
(``LIBRARY_STEPS``: ``climate-optics demo --no-prefect``) or as the Prefect tasks the flow
``flows.pipeline.pipeline_flow`` passes in ``Steps``. Nothing here imports Prefect.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from climate_optics.cluster import dask_client, dask_cluster
from climate_optics.errors import UsageInputError
from climate_optics.evaluation.evaluate_stores import open_forecast
from climate_optics.inference.downscale_forecast import downscale_forecast, interpolate_forecast
from climate_optics.report import headline_lines, write_report
from climate_optics.run_layout import PipelineConfig, RunLayout
from climate_optics.workflow import (
    climatology_period,
    downscaler_checkpoint,
    forecast_held_out,
    hires_options,
    score_forecast,
    train_downscaler,
    train_forecaster,
)
from data_catalog import locks
from data_catalog.ingest import ingest
from data_catalog.redact import redact
from data_catalog.store import check_own_directory


@dataclass
class PipelineResult:
    """Paths of everything one pipeline run wrote, and the wall seconds of each stage."""

    run_dir: Path
    data: Path
    checkpoints: dict[str, Path]  # per training mode
    forecasts: dict[str, Path]  # per training mode
    scores: Path
    hires: Path | None = None  # the fine-grid truth of the downscaling
    downscale: Path | None = None
    downscaled: Path | None = None
    bilinear: Path | None = None
    downscaled_scores: Path | None = None
    report: Path | None = None  # report.html
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def paths(self) -> dict[str, str]:
        """Name -> path of every output (what the Prefect flow returns)."""
        out = {"run_dir": self.run_dir, "data": self.data, "scores": self.scores}
        out |= {f"checkpoint-{m}": p for m, p in self.checkpoints.items()}
        out |= {f"forecast-{m}": p for m, p in self.forecasts.items()}
        for name in ("hires", "downscale", "downscaled", "bilinear", "downscaled_scores", "report"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return {k: str(v) for k, v in out.items()}

    def summary(self) -> str:
        return summary_text(self.paths(), self.stage_seconds)


def summary_text(paths: dict[str, str], stage_seconds: dict[str, float]) -> str:
    """Headline skill per mode, the stage times and where everything is (printed at the end of a run)."""

    lines = headline_lines(paths["scores"], paths.get("downscaled_scores"))
    if stage_seconds:
        total = sum(stage_seconds.values())
        lines += ["", f"wall time {total:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in stage_seconds.items())]
    lines += ["", *(f"{name + ':':18s} {path}" for name, path in paths.items())]
    if "report" in paths:
        lines += ["", f"open the report: {paths['report']}"]
    return "\n".join(lines)


class StageClock:
    """Wall seconds per named stage: ``with clock("train optical"): ...``; saved as ``timings.json``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps({k: round(v, 3) for k, v in self.seconds.items()}, indent=2) + "\n")
        return path


def check_run_dir(run_dir: str | os.PathLike, *, overwrite: bool, resume: bool = False) -> bool:
    """Whether ``run_dir`` holds outputs to replace; a usage error when it does and neither
    ``overwrite`` nor ``resume`` is given."""
    root = Path(run_dir)
    used = root.exists() and any(root.iterdir()) and not resume
    if used and not overwrite:
        raise UsageInputError(
            f"{root} is not empty; pass --overwrite to replace its outputs, resume it, or choose another directory"
        )
    if used:
        check_own_directory(root, signature="pipeline.json")  # never clear a directory this tool did not write
    return used


def prepare_run_dir(
    run_dir: str | os.PathLike, config: PipelineConfig, *, overwrite: bool, resume: bool = False
) -> RunLayout:
    """Create the run directory and save the config; a non-empty one needs ``overwrite`` (start
    over) or ``resume`` (keep its outputs: the flow's cached steps are skipped, training resumes)."""

    layout = RunLayout(
        Path(run_dir).resolve()
    )  # absolute: task cache keys and printed paths do not depend on the working directory
    if check_run_dir(run_dir, overwrite=overwrite, resume=resume):
        for pattern in ("train-*", "downscale-*"):  # training runs refuse to start over an old run
            for path in layout.root.glob(pattern):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
    layout.root.mkdir(parents=True, exist_ok=True)
    (layout.root / "pipeline.json").write_text(json.dumps(redact(config.to_dict()), indent=2, default=str) + "\n")
    return layout


def score_modes(config: PipelineConfig, layout: RunLayout) -> dict[str, Any]:
    """Keyword arguments scoring every mode's forecast in one store: the first mode's, the others as references."""
    first, *others = config.modes
    return dict(
        forecast=str(layout.forecast_of(first)),
        references=[str(layout.forecast_of(m)) for m in others] or None,
        metrics=config.metrics,
        regions=config.regions,
    )


def downscale_window(forecast: str | os.PathLike, max_inits: int | None) -> tuple[str | None, str | None]:
    """(start, end) init times of the forecasts to downscale: the first ``max_inits`` (None: all)."""
    if max_inits is None:
        return None, None

    inits = open_forecast(forecast)["time"].values[:max_inits]
    return str(inits[0]), str(inits[-1])


@dataclass(frozen=True)
class Steps:
    """How each step of the pipeline runs: ``LIBRARY_STEPS`` calls the library, the Prefect flow
    (``flows.pipeline``) passes its tasks. Paths in, paths out; ``dask_address`` is the scheduler
    that ingest and scoring use (None: dask's local scheduler).

    - ``ingest(source, out, *, options, variables, levels, climatology_period, overwrite, dask_address)``
    - ``train_forecaster(store, run_dir, **PipelineConfig.train_options(mode))``
    - ``forecast(checkpoint, store, out, *, lead_hours, max_inits, overwrite)``
    - ``score(forecast, truth, out, *, metrics, regions, references, overwrite, dask_address)``
    - ``train_downscaler(store, run_dir, **PipelineConfig.downscale_options())``
    - ``downscale(checkpoint, forecast, out, bilinear_out, *, members, steps, seed, start, end, overwrite)``
      -> (the downscaled ensemble, its bilinear baseline)
    - ``report(run_dir)``
    """

    ingest: Callable[..., Any]
    train_forecaster: Callable[..., Any]
    forecast: Callable[..., Any]
    score: Callable[..., Any]
    train_downscaler: Callable[..., Any]
    downscale: Callable[..., Any]
    report: Callable[[str], Any]


def _ingest(source: str, out: str, *, dask_address: str | None = None, **kwargs: Any) -> Path:

    with dask_client(address=dask_address):
        return ingest(source, out, **kwargs)


def _score(forecast: str, truth: str, out: str, *, dask_address: str | None = None, **kwargs: Any) -> Path:

    with dask_client(address=dask_address):
        return score_forecast(forecast, truth, out, **kwargs)


def _downscale(
    checkpoint: str,
    forecast: str,
    out: str,
    bilinear_out: str,
    *,
    start: str | None = None,
    end: str | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> tuple[Path, Path]:

    ensemble = downscale_forecast(checkpoint, forecast, out=out, start=start, end=end, overwrite=overwrite, **kwargs)
    bilinear = interpolate_forecast(checkpoint, forecast, out=bilinear_out, start=start, end=end, overwrite=overwrite)
    return ensemble, bilinear


def _report(run_dir: str) -> Path:

    return write_report(run_dir)


LIBRARY_STEPS = Steps(_ingest, train_forecaster, forecast_held_out, _score, train_downscaler, _downscale, _report)


def run_pipeline(
    config: PipelineConfig,
    run_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    say: Callable[[str], None] = lambda message: None,
    progress: bool = False,
    dask_workers: int | None = None,
    dask_address: str | None = None,
    steps: Steps | None = None,
) -> PipelineResult:
    """Ingest -> train and forecast per mode -> score (-> downscale) -> report, step after step.

    ``steps``: how each step runs (default ``LIBRARY_STEPS``, no orchestrator; the Prefect flow
    passes its tasks). ``resume`` keeps a non-empty run directory's outputs. ``dask_workers`` /
    ``dask_address``: ingest and score on a dask cluster (one for the whole run); training and
    inference run in this process."""

    if steps is None:
        steps = replace(LIBRARY_STEPS, train_forecaster=partial(train_forecaster, progress=progress))
    with locks.holding(run_dir), dask_cluster(dask_workers, dask_address) as address:  # one writer per run directory
        return _run_steps(config, run_dir, steps, overwrite=overwrite, resume=resume, say=say, address=address)


def _run_steps(
    config: PipelineConfig,
    run_dir: str | os.PathLike,
    steps: Steps,
    *,
    overwrite: bool,
    resume: bool,
    say: Callable[[str], None],
    address: str | None,
) -> PipelineResult:
    """``run_pipeline``'s steps, in order; ingest and scoring use the dask scheduler at ``address`` (None: local)."""
    clock = StageClock()
    with clock("ingest"):
        period = climatology_period(config)  # opens the source: a bad one fails before anything is written
        layout = prepare_run_dir(run_dir, config, overwrite=overwrite, resume=resume)
        say(f"ingest {config.source} -> {layout.data}")
        data = steps.ingest(
            config.source,
            str(layout.data),
            options=config.options,
            variables=config.variables,
            levels=config.levels,
            climatology_period=period,
            overwrite=overwrite,
            dask_address=address,
        )
    checkpoints, forecasts = {}, {}
    for mode in config.modes:
        say(f"train the {config.preset} forecaster ({mode}, {config.steps} steps) -> {layout.train_run(mode)}")
        with clock(f"train {mode}"):
            checkpoints[mode] = steps.train_forecaster(data, str(layout.train_run(mode)), **config.train_options(mode))
        say(
            f"forecast the held-out period at {', '.join(f'{h} h' for h in config.lead_hours)} -> {layout.forecast_of(mode)}"
        )
        with clock(f"forecast {mode}"):
            forecasts[mode] = steps.forecast(
                checkpoints[mode],
                data,
                str(layout.forecast_of(mode)),
                lead_hours=list(config.lead_hours),
                max_inits=config.max_inits,
                overwrite=overwrite,
            )
    say(f"score {', '.join(config.modes)} against persistence and climatology -> {layout.scores}")
    with clock("score"):
        kwargs = score_modes(config, layout)
        scores = steps.score(
            kwargs.pop("forecast"), data, str(layout.scores), overwrite=overwrite, dask_address=address, **kwargs
        )
    result = PipelineResult(layout.root, data, checkpoints, forecasts, scores)
    if config.downscale:
        mode = config.downscale_mode
        say(f"ingest the fine grid -> {layout.hires}; train the downscaler ({mode}) -> {layout.downscale_run(mode)}")
        with clock("ingest fine grid"):
            result.hires = hires = steps.ingest(
                config.source,
                str(layout.hires),
                options=hires_options(config),
                variables=config.variables,
                levels=config.levels,
                climatology_period=period,
                overwrite=overwrite,
                dask_address=address,
            )
        with clock(f"train downscaler {mode}"):
            result.downscale = steps.train_downscaler(
                hires, str(layout.downscale_run(mode)), **config.downscale_options()
            )
        start, end = downscale_window(forecasts[mode], config.downscale_max_inits)
        say(
            f"downscale the {mode} forecast ({config.downscale_members} members) -> {layout.downscaled_of(mode)}, "
            f"bilinear -> {layout.bilinear}"
        )
        with clock(f"downscale {mode}"):
            result.downscaled, result.bilinear = steps.downscale(
                str(downscaler_checkpoint(result.downscale)),
                forecasts[mode],
                str(layout.downscaled_of(mode)),
                str(layout.bilinear),
                members=config.downscale_members,
                steps=config.downscale_sampler_steps,
                seed=config.seed,
                start=start,
                end=end,
                overwrite=overwrite,
            )
        say(f"score both against the fine truth -> {layout.downscaled_scores}")
        with clock("score fine grid"):
            result.downscaled_scores = steps.score(
                result.downscaled,
                hires,
                str(layout.downscaled_scores),
                metrics=config.metrics,
                regions=config.regions,
                references=[result.bilinear],
                overwrite=overwrite,
                dask_address=address,
            )
    clock.save(layout.timings)  # the report shows the stage times
    say(f"report -> {layout.root / 'report.html'}")
    with clock("report"):
        result.report = Path(steps.report(str(layout.root)))
    result.stage_seconds = clock.seconds
    clock.save(layout.timings)
    return result


# ----------------------------------------------------------------------------- finding a run (notebooks)

RUN_ENV = "CLIMATE_OPTICS_RUN"  # a run directory to explore, for the notebooks
DEMO_DIR_NAME = "climate-optics-demo"  # where `make demo` writes, in the repository root
TINY_RUN: dict[str, Any] = {  # a run made in about a minute on 2 cores when there is none to explore
    "options": {"grid": "5.625deg", "days": 16, "spinup_days": 2, "seed": 0},
    "model": {"dim": 32, "depth": 1, "heads": 2},
    "steps": 30,
    "batch_size": 4,
    "lead_hours": [6, 24],
    "max_inits": 4,
    "downscale": False,
}


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a finished pipeline run (its report, written last, exists)."""
    return (Path(path) / "report.html").is_file() and (Path(path) / "scores.zarr").exists()


def _candidates(start: Path) -> Iterator[Path]:
    """``climate-optics-demo`` in ``start`` and its parents, then in the repository this package is installed from."""
    for folder in (start, *start.parents):
        yield folder / DEMO_DIR_NAME
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        yield repo / DEMO_DIR_NAME


def default_tiny_run() -> Path:
    """``$CLIMATE_OPTICS_CACHE/tiny-run`` (default ``~/.cache/climate-optics/tiny-run``), beside the synthetic cache."""
    return Path(os.environ.get("CLIMATE_OPTICS_CACHE") or Path.home() / ".cache" / "climate-optics") / "tiny-run"


def locate_run(run: str | os.PathLike | None = None, *, say: Callable[[str], None] = print) -> Path:
    """The run directory to explore: ``run``, else ``$CLIMATE_OPTICS_RUN``, else the ``make demo`` run of the
    repository (searched from the working directory up, then beside this package), else a tiny run.

    A given directory that does not exist yet, or the default tiny run (in the user's cache), is
    created with ``TINY_RUN`` settings (about a minute on 2 cores); an existing directory that is not a
    finished run is an error.
    """
    given = run if run is not None else os.environ.get(RUN_ENV) or None
    if given is None:
        found = next((p for p in _candidates(Path.cwd().resolve()) if is_run(p)), None)
        if found is not None:
            return found
        target, overwrite = default_tiny_run(), True  # a half-made tiny run of an interrupted kernel is redone
    else:
        target, overwrite = Path(given).expanduser(), False
        if is_run(target):
            return target
        if target.exists() and any(target.iterdir()):
            raise UsageInputError(f"{target} is not a finished climate-optics run (no report.html and scores.zarr)")
    with locks.holding(target, wait=True):  # another notebook making the same run: wait for it, then use it
        if not is_run(target):
            say(f"no run to explore: making a tiny one in {target} (about a minute)")
            run_pipeline(PipelineConfig(**TINY_RUN), target, overwrite=overwrite)
    return target
