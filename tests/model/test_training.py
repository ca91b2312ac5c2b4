import dataclasses

import numpy as np
import pytest
import torch
from model_fixtures import T0, TINY, sine_sequences
from torch import nn

from model import (
    FittedModel,
    InputError,
    NonFiniteLossError,
    Sequence,
    SolverError,
    TrainingCancelled,
    fit,
    forecast,
    load,
    save,
)
from model.data import Example, Normaliser
from model.network import LatentODE
from model.train import Adamax, batch_loss


def test_loss_falls_far_below_its_start():
    # decays a * exp(-t / 2) with random a: the encoder must read a from the context, the ODE must learn the decay
    rng = np.random.default_rng(1)
    seqs = []
    for _ in range(8):
        t = np.concatenate([[0.0], np.sort(rng.uniform(0, 5, 14))])
        seqs.append(Sequence(T0 + t, rng.uniform(0.5, 2) * np.exp(-0.5 * t), ("a",)))
    model = fit(seqs, dataclasses.replace(TINY, epochs=30, batch_size=8, learning_rate=2e-2))
    losses = [h["loss"] for h in model.history]
    assert len(losses) == 30  # one optimiser step per epoch: 30 steps
    assert losses[-1] < 0.1 * losses[0]


def test_adamax_matches_torch_step_for_step():
    # model/train.py's foreach Adamax against torch.optim.Adamax, with a changing learning rate and a parameter
    # that has no gradient at some steps (it must keep its state and its step count)
    torch.manual_seed(0)
    start = [torch.randn(5, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    ours, theirs = ([p.clone().requires_grad_() for p in start] for _ in range(2))
    optimiser, reference = Adamax(ours), torch.optim.Adamax(theirs, lr=1.0)
    for step in range(12):
        lr = 0.05 * 0.9**step
        grads = [torch.randn(5, 3, dtype=torch.float64), None if step % 3 == 1 else torch.randn(4, dtype=torch.float64)]
        for params in (ours, theirs):
            for p, g in zip(params, grads, strict=True):
                p.grad = None if g is None else g.clone()
        reference.param_groups[0]["lr"] = lr
        reference.step()
        optimiser.step(lr)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert optimiser.steps == [12, 8]


def test_progress_history_and_validation():
    calls = []
    model = fit(sine_sequences(8, 10, seed=2), dataclasses.replace(TINY, epochs=3),
                validation=sine_sequences(3, 10, seed=9), progress=lambda *a: calls.append(a))
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(np.isfinite(c[2]) and c[3] > 0 for c in calls)
    assert [h["epoch"] for h in model.history] == [1, 2, 3]
    assert [h["val_mse"] for h in model.history] == [c[3] for c in calls]
    # each epoch's evaluations: at least 8 windows / batch_size batches, each a solve of >= 2 evaluations
    assert sum(h["nfe"] for h in model.history) <= model.network.dynamics.nfe
    assert all(h["nfe"] >= 2 * -(-8 // TINY.batch_size) for h in model.history)
    assert isinstance(model, FittedModel) and model.horizon > 0 and model.context_seconds > 0


def test_should_stop_cancels():
    polls = []

    def stop():
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(TrainingCancelled) as info:
        fit(sine_sequences(16, 10, seed=2), dataclasses.replace(TINY, epochs=5, batch_size=4), should_stop=stop)
    assert info.value.epoch == 1


def test_non_finite_loss_names_epoch(monkeypatch):
    calls = {"n": 0}
    real = LatentODE.loss

    def loss(self, *args, **kwargs):
        calls["n"] += 1
        value, mse = real(self, *args, **kwargs)
        return (value * np.nan if calls["n"] == 3 else value), mse

    monkeypatch.setattr(LatentODE, "loss", loss)
    with pytest.raises(NonFiniteLossError, match="epoch 2") as info:
        fit(sine_sequences(16, 10, seed=2), dataclasses.replace(TINY, epochs=3, batch_size=8))
    assert info.value.epoch == 2


def test_channels_must_agree():
    a = sine_sequences(1, 5, seed=0)[0]
    b = sine_sequences(1, 5, seed=0, second_channel=False)[0]
    with pytest.raises(InputError, match=r"sequences\[1\]: channels"):
        fit([a, b], TINY)


def _examples(seed: int, channels: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        t = np.concatenate([[0.0], np.sort(rng.uniform(0.1, 2.0, 6))])
        x = np.sin(t)[:, None] + rng.normal(size=(7, channels)) * 0.1
        out.append(Example(ctx_t=t[:4], ctx_x=x[:4], tgt_t=t, tgt_x=x))
    return out


@pytest.mark.parametrize("encoder", ["ode_rnn", "gru"])
def test_never_observed_channel_adds_nothing_to_the_loss(encoder):
    config = TINY.replace(encoder=encoder)
    torch.manual_seed(0)
    net = LatentODE(2, config)
    examples = _examples(0, 2)
    hidden = [dataclasses.replace(e, ctx_x=np.column_stack([e.ctx_x[:, 0], np.full(len(e.ctx_t), np.nan)]),
                                  tgt_x=np.column_stack([e.tgt_x[:, 0], np.full(len(e.tgt_t), np.nan)]))
              for e in examples]
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    loss_hidden, _ = batch_loss(net, hidden, config, 0.5, gen())
    loss_hidden.backward()
    # the decoder row of the unobserved channel gets no gradient ...
    assert torch.all(net.decoder[-1].weight.grad[1] == 0)
    assert net.decoder[-1].bias.grad[1] == 0
    assert torch.any(net.decoder[-1].weight.grad[0] != 0)
    # ... and the loss equals that of a one-channel model with the same weights on channel "a" alone
    torch.manual_seed(0)
    single = LatentODE(1, config)
    state = net.state_dict()
    state["decoder.0.weight"] = state["decoder.0.weight"][:1]
    state["decoder.0.bias"] = state["decoder.0.bias"][:1]
    key = "encoder.gru.weight_ih_l0" if encoder == "gru" else "encoder.cell.weight_ih"
    state[key] = state[key][:, [0, 2, 4]]  # inputs: [a, b, mask_a, mask_b, gap] -> [a, mask_a, gap]
    single.load_state_dict(state)
    alone = [dataclasses.replace(e, ctx_x=e.ctx_x[:, :1], tgt_x=e.tgt_x[:, :1]) for e in hidden]
    loss_alone, _ = batch_loss(single, alone, config, 0.5, gen())
    assert loss_hidden.item() == pytest.approx(loss_alone.item(), rel=1e-6)


def _exploding(net: LatentODE) -> None:
    linear = nn.Linear(net.dynamics.net[0].in_features, net.dynamics.net[0].in_features)
    with torch.no_grad():
        linear.weight.copy_(60 * torch.eye(linear.in_features))
        linear.bias.zero_()
    net.dynamics.net = linear


def test_solver_error_on_exploding_dynamics_in_training():
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, max_steps=200)
    net = LatentODE(1, config)
    _exploding(net)
    examples = [dataclasses.replace(e, tgt_t=e.tgt_t * 3) for e in _examples(0, 1)]
    with pytest.raises(SolverError, match="Hint"):
        batch_loss(net, examples, config, 0.0, torch.Generator().manual_seed(0))


def test_solver_error_on_exploding_dynamics_in_forecast(fitted):
    broken = dataclasses.replace(fitted, network=LatentODE(2, fitted.config))
    broken.network.load_state_dict(fitted.network.state_dict())
    _exploding(broken.network)
    ctx = sine_sequences(1, 8, seed=3)[0]
    with pytest.raises(SolverError, match="Hint"):
        forecast(broken, ctx, [ctx.times[-1] + fitted.horizon], samples=4, seed=0)


@pytest.mark.parametrize(("solver", "seminorm"), [("dopri5", False), ("dopri5", True), ("rk4", False)])
def test_adjoint_gradients_equal_backprop_gradients(solver, seminorm):
    """dopri5: model/solver/adjoint.py's adjoint; rk4: torchdiffeq's odeint_adjoint (fixed-step solvers)."""
    grads = {}
    for gradient in ("adjoint", "backprop"):
        config = dataclasses.replace(TINY, gradient=gradient, rtol=1e-10, atol=1e-10, seminorm=seminorm,
                                     solver=solver, step_size=0.01)
        torch.manual_seed(0)
        net = LatentODE(1, config).double()
        loss, _ = batch_loss(net, _examples(1, 1), config, 0.7, torch.Generator().manual_seed(2))
        loss.backward()
        grads[gradient] = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    err = (grads["adjoint"] - grads["backprop"]).norm() / grads["backprop"].norm()
    assert err < 1e-4
    assert grads["backprop"].norm() > 0


def test_normaliser_time_scale_from_training_windows():
    seqs = sine_sequences(4, 6, seed=0)
    norm = Normaliser.fit(seqs, np.array([10.0, 20.0, 30.0]), time_span=5.0)
    assert norm.time_scale == pytest.approx(4.0)
    assert norm.model_time(np.array([1.7e9 + 8.0]), 1.7e9)[0] == pytest.approx(2.0)


def test_learned_observation_noise_grows_toward_the_data_and_travels_with_the_model(tmp_path):
    """With learn_obs_std the per-channel noise starts at obs_std and rises when the fit cannot be that close."""
    config = TINY.replace(learn_obs_std=True, epochs=10, learning_rate=5e-2)
    fitted = fit(sine_sequences(16, 12, seed=0), config)
    sigma = fitted.network.observation_std().detach()
    assert sigma.shape == (2,) and bool(torch.all(sigma > 1.25 * config.obs_std))
    assert not hasattr(fit(sine_sequences(4, 12, seed=0), TINY.replace(epochs=1)).network, "log_obs_std")
    save(fitted, tmp_path / "m.safetensors")
    again = load(tmp_path / "m.safetensors")
    torch.testing.assert_close(again.network.observation_std(), fitted.network.observation_std())
    ctx = sine_sequences(1, 8, seed=5)[0]
    a = forecast(fitted, ctx, ctx.times[-1], seed=0)
    b = forecast(again, ctx, ctx.times[-1], seed=0)
    np.testing.assert_array_equal(a.quantiles, b.quantiles)


def test_hand_written_vjp_equals_autograd():
    from model.network import Dynamics
    from model.solver.folded import FoldedMLP

    torch.manual_seed(0)
    dynamics = Dynamics(5, 16, 2).double()
    z = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    a = torch.randn(7, 5, dtype=torch.float64)
    layers = [m for m in dynamics.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        mlp = FoldedMLP(layers)
        f, inputs = mlp(z.detach())
        vjp_z, outputs = mlp.backward(inputs, a)
        vjp_p = mlp.param_vjp(inputs, outputs)
    expected = dynamics(0, z)
    grads = torch.autograd.grad(expected, [z, *dynamics.parameters()], a)
    torch.testing.assert_close(f, expected.detach(), rtol=1e-12, atol=1e-12)
    for ours, theirs in zip([vjp_z, *vjp_p], grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
