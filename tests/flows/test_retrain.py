"""Scheduled retraining: the promotion gate, the registry it updates, the deployment and `serve`."""

from __future__ import annotations

import math

import pytest


@pytest.fixture(scope="module")
def retrained(prefect_harness, tiny_source, tiny_settings_factory, tmp_path_factory, torch_single_thread_module):
    """A registry after two retrainings: the first (no current model: promoted), then a candidate
    damaged by a learning rate of 1 (two AdamW steps of size ~1 wreck the weights: must not be promoted)."""
    from flows.retrain import retrain_flow

    registry = tmp_path_factory.mktemp("retrain") / "registry"
    settings = tiny_settings_factory()
    steps = settings.pop("steps")
    first = retrain_flow(str(registry), source=str(tiny_source), steps=steps, settings=settings)
    damaged = retrain_flow(str(registry), source=str(tiny_source), steps=steps, settings={**settings, "lr": 1.0})
    return registry, first, damaged


def test_first_retraining_is_promoted_and_registered(retrained):
    from climate_optics.registry import ModelRegistry

    registry, first, _ = retrained
    assert first["promoted"] and first["version"] == "v0001" and first["previous"] is None
    record = ModelRegistry.open(registry).record("v0001")
    assert record["validation"]["gate"]["metric"] == "rmse" and record["validation"]["gate"]["level"] == 500
    assert math.isfinite(record["validation"]["score"]) and record["validation"]["current_score"] is None
    assert record["data_period"]["start"] < record["data_period"]["validation_start"] < record["data_period"]["end"]
    assert record["training"]["train_config"]["steps"] == 2


def test_a_worse_candidate_is_registered_but_not_promoted(retrained):
    from climate_optics.registry import ModelRegistry

    registry, first, damaged = retrained
    comparison = damaged["comparison"]
    assert not damaged["promoted"] and damaged["current"] == "v0001" and damaged["version"] == "v0002"
    assert comparison["candidate"] > comparison["current"]  # Z500 RMSE at 24 h: worse
    assert comparison["current"] == pytest.approx(first["comparison"]["candidate"])  # v0001 on the same held-out inits
    reg = ModelRegistry.open(registry)
    assert reg.current() == "v0001" and reg.versions() == ["v0001", "v0002"]
    assert reg.record("v0002")["provenance"]["warm_start"] == "v0001"
    assert "worse than current" in damaged["reason"]


def test_the_decision_is_published_with_both_scores(retrained):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    _, _, damaged = retrained
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["retrain-gate"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    text = artifacts[0].data
    assert "v0002 not promoted" in text and "worse than current" in text
    assert f"{damaged['comparison']['candidate']:.6g}" in text and f"{damaged['comparison']['current']:.6g}" in text


def test_a_better_candidate_replaces_a_damaged_current(retrained, tiny_source, tiny_settings, tmp_path):
    """The current model is made worse (weights scaled by 3) and promoted by hand; a retraining from
    scratch must beat it and become current, and rollback returns to the damaged one."""
    from climate_optics.io.checkpoints import load_checkpoint, save_checkpoint
    from climate_optics.registry import ModelRegistry
    from flows.retrain import retrain_flow

    registry, _, _ = retrained
    reg = ModelRegistry.open(registry)
    state = load_checkpoint(reg.checkpoint("v0001"))
    state["model"] = {
        k: v * 3 if v.is_floating_point() and k.endswith("weight") else v for k, v in state["model"].items()
    }
    state.pop("sha256")
    damaged = reg.register(save_checkpoint(state, tmp_path / "damaged.pt"))
    assert reg.promote(damaged)
    steps = tiny_settings.pop("steps")
    result = retrain_flow(
        str(registry), source=str(tiny_source), steps=steps, settings=tiny_settings, warm_start=False, keep=3
    )
    comparison = result["comparison"]
    assert result["promoted"] and comparison["candidate"] <= comparison["current"]
    assert reg.current() == result["version"] == "v0004" and result["previous"] == damaged
    assert result["pruned"] == ["v0001"] and reg.versions() == ["v0002", "v0003", "v0004"]
    assert reg.rollback() == damaged


def test_a_failed_retraining_never_moves_current(retrained, tiny_source, tiny_settings, monkeypatch):
    from climate_optics.registry import ModelRegistry
    from flows.retrain import retrain_flow

    registry, _, _ = retrained
    reg = ModelRegistry.open(registry)
    before = (reg.current(), reg.versions(), (registry / "current.json").read_bytes())

    def broken(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr("flows.retrain.compare_models", broken)
    steps = tiny_settings.pop("steps")
    state = retrain_flow(str(registry), source=str(tiny_source), steps=steps, settings=tiny_settings, return_state=True)
    assert state.is_failed()
    assert (reg.current(), reg.versions(), (registry / "current.json").read_bytes()) == before


def test_gate_is_configurable_and_validated():
    from climate_optics.errors import UsageInputError
    from climate_optics.retraining import PromotionGate

    acc = PromotionGate.from_dict({"metric": "acc", "variable": "temperature", "level": 850, "lead_hours": 12})
    assert acc.at_least_as_good(0.8, 0.7) and not acc.at_least_as_good(0.6, 0.7)
    assert PromotionGate().at_least_as_good(300.0, 300.0) and not PromotionGate().at_least_as_good(float("nan"), 1.0)
    assert PromotionGate(metric="bias").at_least_as_good(-1.0, 2.0)
    with pytest.raises(UsageInputError, match="metric 'skill'"):
        PromotionGate(metric="skill")
    with pytest.raises(UsageInputError, match="unknown setting 'lead'"):
        PromotionGate.from_dict({"lead": 24})


def test_retrain_deployment_has_the_schedule_and_runs_one_at_a_time(tmp_path):
    from flows.retrain import retrain_deployment

    deployment = retrain_deployment(str(tmp_path), cron="30 4 * * 2", mode="dfa", steps=50)
    assert deployment.name == "scheduled-retraining"
    assert [s.schedule.cron for s in deployment.schedules] == ["30 4 * * 2"]
    assert deployment.parameters == {"registry": str(tmp_path), "mode": "dfa", "steps": 50}
    limit = deployment.concurrency_limit
    assert getattr(limit, "limit", limit) == 1
