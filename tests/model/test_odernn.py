"""model/solver/odernn.py: the ODE-RNN encoder's hand-written loop and backward pass equal autograd through the plain
loop."""

import pytest
import torch

import model.solver.odernn
from model.data import EncoderBatch
from model.network import ODERNNEncoder
from model.solver.odernn import odernn, odernn_reference

FEATURES, HIDDEN, UNITS = 5, 6, 4


def _encoder(dtype: torch.dtype, seed: int = 0) -> ODERNNEncoder:
    torch.manual_seed(seed)
    encoder = ODERNNEncoder(FEATURES, HIDDEN, UNITS).to(dtype)
    with torch.no_grad():
        for p in encoder.parameters():
            p.normal_(0, 0.6)  # past the default init's near-linear range: every tanh and σ bends
    return encoder


def _batch(lengths: list[int], longest: int, dtype: torch.dtype, seed: int = 1) -> EncoderBatch:
    """Random steps with gaps in [0, 1) as the last feature, zero after each row's length (as encoder_batch pads)."""
    gen = torch.Generator().manual_seed(seed)
    steps = torch.randn(len(lengths), longest, FEATURES, dtype=dtype, generator=gen)
    steps[..., -1] = torch.rand(len(lengths), longest, dtype=dtype, generator=gen)
    lengths_t = torch.tensor(lengths)
    steps[torch.arange(longest)[None, :] >= lengths_t[:, None]] = 0
    return EncoderBatch(steps, lengths_t)


def _output_and_grads(encoder: ODERNNEncoder, batch: EncoderBatch, run) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """run(encoder, batch) and the parameters' gradients of a fixed random weighted sum of it."""
    out = run(encoder, batch)
    weights = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(2))
    return out.detach(), list(torch.autograd.grad((out * weights).sum(), list(encoder.parameters())))


def _assert_close(ours: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    assert torch.linalg.norm(ours - expected) <= tol * torch.linalg.norm(expected), (ours, expected)


@pytest.mark.parametrize(("lengths", "longest"), [
    ([7, 1, 3, 7, 5, 2], 9),  # padding on every row, a row of one step
    ([4, 4, 4], 4),  # every row full
    ([1], 1),
])
def test_output_and_gradients_equal_autograd_through_the_loop_float64(lengths, longest):
    encoder = _encoder(torch.float64)
    batch = _batch(lengths, longest, torch.float64)
    out, grads = _output_and_grads(encoder, batch, odernn)
    expected, expected_grads = _output_and_grads(encoder, batch, odernn_reference)
    _assert_close(out, expected, 1e-10)
    for name, g, e in zip(dict(encoder.named_parameters()), grads, expected_grads, strict=True):
        if name == "cell.weight_hh" and longest == 1:  # its only step starts from h = 0
            assert torch.equal(g, torch.zeros_like(g))
        else:
            assert torch.linalg.norm(g) > 0, name
            _assert_close(g, e, 1e-9)


def test_output_and_gradients_equal_autograd_through_the_loop_float32():
    encoder = _encoder(torch.float32)
    batch = _batch([12, 1, 30, 7, 30, 19, 2, 25], 33, torch.float32)
    out, grads = _output_and_grads(encoder, batch, odernn)
    expected, expected_grads = _output_and_grads(encoder, batch, odernn_reference)
    _assert_close(out, expected, 1e-4)
    for g, e in zip(grads, expected_grads, strict=True):
        _assert_close(g, e, 1e-4)


def test_the_hand_written_backward_runs_in_training_and_the_loop_alone_without_grad():
    encoder = _encoder(torch.float64)
    batch = _batch([3, 5, 2], 6, torch.float64)
    assert type(odernn(encoder, batch).grad_fn).__name__ == "_OdeRnnBackward"
    assert type(encoder(batch).grad_fn).__name__ == "_OdeRnnBackward"  # the module's forward is odernn
    with torch.no_grad():
        expected = odernn_reference(encoder, batch)
        out = encoder(batch)
    assert out.grad_fn is None
    _assert_close(out, expected, 1e-12)


def test_no_grad_loop_in_blocks_of_input_rows(monkeypatch):
    encoder = _encoder(torch.float64)
    batch = _batch([40, 3, 17, 40, 1, 28], 41, torch.float64)
    with torch.no_grad():
        whole = encoder(batch)
        monkeypatch.setattr(model.solver.odernn, "_NO_GRAD_ROWS", 7)  # x W_ih a few steps at a time (at least one)
        blocks = encoder(batch)
        expected = odernn_reference(encoder, batch)
    _assert_close(whole, expected, 1e-12)
    _assert_close(blocks, expected, 1e-12)


def test_padding_steps_change_nothing():
    encoder = _encoder(torch.float64)
    batch = _batch([5, 1, 3], 5, torch.float64)
    garbage = torch.randn(3, 4, FEATURES, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    padded = EncoderBatch(torch.cat([batch.steps, garbage], dim=1), batch.lengths)  # lengths unchanged
    out, grads = _output_and_grads(encoder, batch, odernn)
    out_padded, grads_padded = _output_and_grads(encoder, padded, odernn)
    assert torch.equal(out_padded, out)
    for g, g_padded in zip(grads, grads_padded, strict=True):
        assert torch.equal(g_padded, g)


def test_contexts_without_steps_keep_the_zero_state():
    encoder = _encoder(torch.float64)
    for lengths in ([3, 0, 2], [0, 0]):
        batch = _batch(lengths, 4, torch.float64)
        out, grads = _output_and_grads(encoder, batch, odernn)
        expected, expected_grads = _output_and_grads(encoder, batch, odernn_reference)
        assert torch.equal(out[torch.tensor(lengths) == 0], torch.zeros(lengths.count(0), HIDDEN, dtype=torch.float64))
        _assert_close(out, expected, 1e-10)
        for g, e in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)


def test_frozen_parameters_and_steps_that_require_grad():
    encoder = _encoder(torch.float64)
    batch = _batch([4, 2], 4, torch.float64)
    encoder.cell.requires_grad_(False)  # only the ODE trains
    ode = list(encoder.ode.parameters())
    out = odernn(encoder, batch)
    weights = torch.randn(out.shape, dtype=out.dtype)
    grads = torch.autograd.grad((out * weights).sum(), ode)
    expected = torch.autograd.grad((odernn_reference(encoder, batch) * weights).sum(), ode)
    for g, e in zip(grads, expected, strict=True):
        _assert_close(g, e, 1e-9)
    steps = batch.steps.clone().requires_grad_()  # not data: the reference loop, which differentiates the steps
    (grad_steps,) = torch.autograd.grad(odernn(encoder, EncoderBatch(steps, batch.lengths)).sum(), steps)
    assert torch.linalg.norm(grad_steps[0, :4]) > 0 and torch.all(grad_steps[1, 2:] == 0)
