"""The model registry (climate_optics.registry) and `climate-optics models`."""

from __future__ import annotations

import json

import pytest


def fake_checkpoint(path, value: float):
    """A small checkpoint in the project's format (digest recorded), distinguishable by ``value``."""
    import torch

    from climate_optics.io.checkpoints import save_checkpoint

    state = {
        "model": {"weight": torch.full((4, 3), float(value))},
        "step": 7,
        "train_config": {"steps": 7, "lr": 0.001, "mode": "backprop"},
        "task": {
            "kind": "forecast",
            "model_config": {"dim": 32, "depth": 1},
            "data": {"store": "data.zarr", "source_dataset": "synthetic", "val_start_time": "2000-01-08"},
        },
    }
    return save_checkpoint(state, path)


@pytest.fixture
def registry(tmp_path):
    from climate_optics.registry import ModelRegistry

    return ModelRegistry.open(tmp_path / "registry", create=True)


def test_register_copies_the_checkpoint_with_its_sha256_config_and_skill(registry, tmp_path):
    from climate_optics.provenance import file_sha256

    source = fake_checkpoint(tmp_path / "a.pt", 1.0)
    version = registry.register(
        source, validation={"score": 123.0}, data_period={"start": "2000-01-01", "end": "2000-02-01"}
    )
    record = registry.record(version)
    assert version == "v0001" and registry.versions() == ["v0001"]
    assert record["sha256"] == file_sha256(source) == file_sha256(registry.checkpoint(version))
    assert record["training"]["train_config"]["steps"] == 7 and record["training"]["model_config"]["dim"] == 32
    assert record["validation"]["score"] == 123.0 and record["data_period"]["end"] == "2000-02-01"
    assert record["provenance"]["source_dataset"] == "synthetic" and record["provenance"]["climate_optics_version"]
    assert registry.current() is None  # registered, not promoted
    assert not [p for p in (registry.root / "versions").iterdir() if p.name.startswith(".")]  # no temporaries left


def test_promote_and_rollback_walk_the_history(registry, tmp_path):
    versions = [registry.register(fake_checkpoint(tmp_path / f"{i}.pt", i)) for i in range(3)]
    for version in versions:
        assert registry.promote(version)
    assert registry.current() == "v0003" and registry.pointer()["history"] == ["v0001", "v0002"]
    assert registry.rollback() == "v0002" and registry.current() == "v0002"
    assert registry.rollback() == "v0001"
    from climate_optics.errors import UsageInputError

    with pytest.raises(UsageInputError, match="nothing to roll back to"):
        registry.rollback()
    assert registry.current() == "v0001"
    # a stale expectation (another run promoted first) changes nothing
    assert not registry.promote("v0003", expected_current="v0002") and registry.current() == "v0001"


def test_pointer_is_replaced_atomically(registry, tmp_path, monkeypatch):
    """The pointer is written to a temporary sibling and os.replace'd: a crash before the rename keeps the old one."""
    import os

    version = registry.register(fake_checkpoint(tmp_path / "a.pt", 1.0))
    other = registry.register(fake_checkpoint(tmp_path / "b.pt", 2.0))
    registry.promote(version)
    calls = []

    def failing_replace(src, dst):
        calls.append((os.path.basename(src), os.path.basename(dst)))
        raise OSError("disk full")

    monkeypatch.setattr("climate_optics.registry.os.replace", failing_replace)
    with pytest.raises(OSError):
        registry.promote(other)
    monkeypatch.undo()
    assert calls and calls[0][1] == "current.json" and calls[0][0].startswith(".current.json.tmp-")
    assert registry.current() == version
    assert sorted(p.name for p in registry.root.iterdir()) == ["current.json", "versions"]


def test_a_damaged_checkpoint_is_never_promoted(registry, tmp_path):
    from climate_optics.errors import UsageInputError

    good = registry.register(fake_checkpoint(tmp_path / "a.pt", 1.0))
    bad = registry.register(fake_checkpoint(tmp_path / "b.pt", 2.0))
    registry.promote(good)
    with open(registry.checkpoint(bad), "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(UsageInputError, match="differs from the recorded"):
        registry.promote(bad)
    assert registry.current() == good


def test_prune_keeps_the_newest_and_the_current(registry, tmp_path):
    versions = [registry.register(fake_checkpoint(tmp_path / f"{i}.pt", i)) for i in range(5)]
    registry.promote(versions[0])
    registry.promote(versions[1])
    registry.promote(versions[2])
    assert registry.prune(2) == ["v0001"]  # kept: the newest two, current v0003 and rollback's target v0002
    assert registry.versions() == ["v0002", "v0003", "v0004", "v0005"]
    assert registry.current() == "v0003" and registry.pointer()["history"] == ["v0002"]  # pruned v0001 left the history
    assert registry.rollback() == "v0002"


def test_models_cli(registry, tmp_path, run_cli):
    root = registry.root
    status, out, _ = run_cli(
        "models", "register", fake_checkpoint(tmp_path / "a.pt", 1.0), "--registry", root, "--promote"
    )
    assert status == 0 and out.strip() == "v0001 (current)"
    assert run_cli("models", "register", fake_checkpoint(tmp_path / "b.pt", 2.0), "--registry", root)[0] == 0
    status, out, _ = run_cli("models", "list", "--registry", root)
    assert status == 0 and out.splitlines()[0].startswith("* v0001") and out.splitlines()[1].startswith("  v0002")
    status, out, _ = run_cli("models", "promote", "v0002", "--registry", root)
    assert status == 0 and registry.current() == "v0002"
    status, out, _ = run_cli("models", "show", "--registry", root)
    shown = json.loads(out)
    assert status == 0 and shown["version"] == "v0002" and shown["current"] and shown["checkpoint_intact"]
    status, out, _ = run_cli("models", "rollback", "--registry", root)
    assert status == 0 and registry.current() == "v0001" and "was v0002" in out
    status, out, _ = run_cli("models", "list", "--registry", root, "--json")
    assert status == 0 and json.loads(out)["current"] == "v0001"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["models", "list", "--registry", "{missing}"], "not a model registry"),
        (["models", "show", "v0009", "--registry", "{root}"], "no version 'v0009' (registered: v0001)"),
        (["models", "promote", "latest", "--registry", "{root}"], "no version 'latest'"),
        (["models", "rollback", "--registry", "{root}"], "nothing to roll back to"),
        (["models", "prune", "--keep", "0", "--registry", "{root}"], "--keep must be at least 1"),
        (["models", "register", "{missing}", "--registry", "{root}"], "checkpoint not found"),
    ],
)
def test_models_cli_bad_input_exits_2_with_one_line(registry, tmp_path, run_cli, args, expected):
    registry.promote(registry.register(fake_checkpoint(tmp_path / "a.pt", 1.0)))
    before = (registry.root / "current.json").read_bytes()
    filled = [a.format(missing=tmp_path / "missing", root=registry.root) for a in args]
    status, _, err = run_cli(*filled)
    assert status == 2 and expected in err and len(err.strip().splitlines()) == 1
    assert (registry.root / "current.json").read_bytes() == before and registry.versions() == ["v0001"]
