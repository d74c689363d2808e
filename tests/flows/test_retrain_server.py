"""`climate-optics serve` against a real `prefect server start`, and its refusal without one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parents[2]


def test_serve_without_a_server_exits_2_in_seconds(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(tmp_path / "home")
    }
    start = time.monotonic()
    done = subprocess.run(
        [BIN / "climate-optics", "serve", "--registry", tmp_path / "registry"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - start
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "prefect server start" in lines[0] and "PREFECT_API_URL" in lines[0]
    assert elapsed < 10 and not (tmp_path / "registry").exists()
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{free_port()}/api"  # set, but nothing listens
    done = subprocess.run(
        [BIN / "climate-optics", "serve"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2 and "no Prefect server answers" in done.stderr and "prefect server start" in done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url: str, path: str, body: dict | None = None) -> dict | None:
    """GET (or POST ``body``) on the Prefect REST API; None on 404 or no answer. A busy server's
    503 (its SQLite database locked on a loaded machine) is retried for up to a minute."""
    import httpx

    for _ in range(30):
        try:
            response = (
                httpx.post(url + path, json=body, timeout=10) if body is not None else httpx.get(url + path, timeout=10)
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 503:
            break
        time.sleep(2)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def wait_for(what: str, probe, timeout: float, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        for process in processes:
            assert process.poll() is None, f"{what}: {process.args[:3]} exited with {process.returncode}"
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_served_deployment_runs_on_a_real_server_and_updates_the_registry(tiny_source, tiny_settings, tmp_path):
    """prefect server start (127.0.0.1, a free port, its own PREFECT_HOME) -> climate-optics serve ->
    a run triggered through the API completes -> the registry has a current version."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": url,
        "OMP_NUM_THREADS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in tiny_settings.items() if k != "steps"}))
    registry = tmp_path / "registry"
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("server", "serve")}
    server = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env,
        stdout=logs["server"],
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    serving = None
    try:
        wait_for("the server's health check", lambda: api(url, "/health"), 180, [server])
        serving = subprocess.Popen(
            [
                BIN / "climate-optics",
                "serve",
                "--registry",
                registry,
                "--data",
                tiny_source,
                "--config",
                config,
                "--steps",
                "2",
                "--cron",
                "0 3 * * 1",
            ],
            env=env,
            stdout=logs["serve"],
            stderr=subprocess.STDOUT,
            cwd=REPOSITORY,
        )
        deployment = wait_for(
            "the served deployment",
            lambda: api(url, "/deployments/name/retrain-forecaster/scheduled-retraining"),
            180,
            [server, serving],
        )
        assert (
            deployment["concurrency_limit"] == 1 or (deployment.get("global_concurrency_limit") or {}).get("limit") == 1
        )
        run = api(url, f"/deployments/{deployment['id']}/create_flow_run", {})
        final = wait_for(
            "the flow run to finish",
            lambda: (
                lambda r: r if r and r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None
            )(api(url, f"/flow_runs/{run['id']}")),
            420,
            [server, serving],
        )
        assert final["state"]["type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
        pointer = json.loads((registry / "current.json").read_text())
        assert pointer["version"] == "v0001" and (registry / "versions" / "v0001" / "checkpoint.pt").is_file()
    finally:
        for process in (serving, server):
            if process is not None:
                stop(process)
        for handle in logs.values():
            handle.close()


def test_prefect_yaml_names_the_retrain_flow_with_valid_parameters():
    """prefect.yaml names the retrain flow, parameters it accepts, a valid schedule and one run at a time."""
    import inspect

    from climate_optics.retraining import PromotionGate
    from flows.retrain import retrain_flow

    project = yaml.safe_load((REPOSITORY / "prefect.yaml").read_text())
    (deployment,) = project["deployments"]
    path, name = deployment["entrypoint"].split(":")
    assert (REPOSITORY / path).resolve() == Path(inspect.getfile(retrain_flow.fn)).resolve() and name == "retrain_flow"
    inspect.signature(retrain_flow.fn).bind(**deployment["parameters"])  # raises on an unknown parameter
    PromotionGate.from_dict(deployment["parameters"]["gate"])
    from flows.cli.serve import check_cron

    assert [check_cron(s["cron"]) for s in deployment["schedules"]] == ["0 3 * * 1"]
    assert deployment["concurrency_limit"] == 1 and deployment["work_pool"]["name"] == "climate-optics"
