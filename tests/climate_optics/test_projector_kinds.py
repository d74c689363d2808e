"""Projector kinds are defined once (optical_backend.kinds): one added at run time or through the
entry point is accepted by make_projector, DFA, the training config and the CLI alike."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from climate_optics.errors import UsageInputError
from climate_optics.training.task import TrainConfig
from optical_backend import DFA, OpticalConfigError, kinds, make_projector
from optical_backend.toy_models import MLP

SIGN_MODULE = textwrap.dedent('''
    import torch

    from optical_backend.projector import BaseProjector, seeded_generator


    class SignProjector(BaseProjector):
        """Random +-1/sqrt(n_out) entries: (N, n_in) -> (N, n_out)."""

        kind = "sign-test"

        def __init__(self, n_in, n_out, *, seed=0, device=None):
            super().__init__(n_in, n_out, seed=seed, device=device)
            signs = torch.randint(0, 2, (n_in, n_out), generator=seeded_generator(seed)).float() * 2 - 1
            self.matrix = (signs / n_out**0.5).to(self.device)  # (n_in, n_out)

        def _project(self, x):
            return x @ self.matrix
''')


@pytest.fixture
def sign_module(tmp_path, monkeypatch):
    """A module ``sign_projector_test`` on sys.path, and an empty run-time registry."""
    (tmp_path / "sign_projector_test.py").write_text(SIGN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(kinds, "_REGISTERED", {})
    return tmp_path


def test_builtin_names_are_the_ones_everything_reads():
    assert kinds.TRAINING_MODES == ("backprop", "dfa", "optical")
    assert {"dense", "structured", "optical"} <= set(kinds.projector_kinds())
    assert "optical" not in kinds.digital_projector_kinds()
    with pytest.raises(UsageInputError, match="projector must be one of .*dense.*structured"):
        TrainConfig(mode="dfa", projector="sign-test")
    with pytest.raises(OpticalConfigError, match="unknown projector kind 'sign-test'"):
        make_projector("sign-test", 4, 3)


def test_a_kind_registered_at_run_time_reaches_dfa_and_the_training_config(sign_module):
    kinds.register_projector("sign-test", "sign_projector_test:SignProjector")
    assert "sign-test" in kinds.digital_projector_kinds()
    projector = make_projector("sign-test", 4, 3, seed=1)
    x = torch.randn(5, 4)
    torch.testing.assert_close(projector(x), x @ projector.matrix)
    assert TrainConfig(mode="dfa", projector="sign-test").projector == "sign-test"
    torch.manual_seed(0)
    model = MLP(4, (6, 5), 3)
    dfa = DFA(model, ["layers.1", "layers.3"], projector="sign-test", seed=2)
    x, y = torch.randn(8, 4), torch.randn(8, 3)
    dfa.backward(torch.nn.functional.mse_loss(model(x), y))
    assert type(dfa.projector).__name__ == "SignProjector"
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.layers[0].parameters())
    with pytest.raises(OpticalConfigError, match="built-in"):
        kinds.register_projector("dense", "sign_projector_test:SignProjector")


def test_an_installed_entry_point_kind_is_listed_and_built(sign_module):
    dist = sign_module / "sign_projector_test-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sign-projector-test\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{kinds.ENTRY_POINT_GROUP}]\nsign-ep = sign_projector_test:SignProjector\n"
    )
    assert "sign-ep" in kinds.projector_kinds()
    assert type(make_projector("sign-ep", 4, 3)).__name__ == "SignProjector"
    assert TrainConfig(mode="dfa", projector="sign-ep").projector == "sign-ep"


def test_the_cli_trains_with_a_registered_kind_and_refuses_an_unknown_one(
    sign_module, synthetic_store, tmp_path, run_cli
):
    kinds.register_projector("sign-test", "sign_projector_test:SignProjector")
    args = [
        "train",
        "forecast",
        "--data",
        synthetic_store,
        "--mode",
        "dfa",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    ]
    status, out, err = run_cli(*args, "--projector", "sign-test", "--out", tmp_path / "run")
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["steps"] == 2
    status, _, err = run_cli(*args, "--projector", "nope", "--out", tmp_path / "other")
    assert status == 2 and "projector must be one of" in err and "sign-test" in err
    assert not (tmp_path / "other").exists()
