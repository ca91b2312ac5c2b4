"""The ODE-RNN encoder's recurrence (model/network.py `ODERNNEncoder`), with a hand-written backward pass.

Per context and step j < its length, with x the step's features and dt = x[-1] its gap (PyTorch's GRU cell, gate
rows r, z, n):
    r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr),  z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
    n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)),  m = (1 − z) ⊙ n + z ⊙ h
    h ← m − dt · (tanh(m W_1ᵀ + b_1) W_2ᵀ + b_2)
from h = 0; padding steps leave h as it is.

Autograd through that loop records some 25 ops a step, each with its own backward node. `odernn` computes the same
function and the same gradients (to float rounding; tests/model/test_odernn.py checks them against
`odernn_reference`, the loop itself) with:
- the contexts sorted longest first, so that step j works on the first k_j rows only: no masks, no work on padding;
- x W_ihᵀ + b_ih for every step in one product before the loop, the state's products added in place;
- the ODE's tanh(a) as 2σ(2a) − 1 folded into its weights, as folded.py does (torch 2.13's CPU tanh is slow),
  and the GRU's candidate n as 2σ(2u) − 1 in place (folded.py's sigmoid_tanh: on its (50, 150) column block
  of the gates tanh_ takes 23 µs, these four ops 12, two threads);
- a backward pass that runs the steps in reverse doing only what the recurrence needs (three products a step), keeps
  each step's pre-activation gradients, and forms every parameter gradient with one product over all steps after.
The matrix products, the same as autograd's, are most of the time left: on 50 contexts of 44 steps each (hidden 150,
units 100, float32, one CPU thread) forward and backward take ~26 ms against ~35 ms through autograd, ~17 ms of it in
products; contexts of uneven lengths save their padding on top (~17 ms against ~35 at lengths uniform in 1-44).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

import torch
from torch.autograd.function import once_differentiable

from model.data import EncoderBatch
from model.solver.fastpath import is_fast_odernn, odernn_ode
from model.solver.folded import fold, sigmoid_tanh

if TYPE_CHECKING:
    from model.network import ODERNNEncoder

__all__ = ["odernn", "odernn_reference"]

_NO_GRAD_ROWS = 2048  # packed rows of x W_ih at a time without autograd: memory stays bounded on long contexts


def odernn_reference(encoder: ODERNNEncoder, batch: EncoderBatch) -> torch.Tensor:
    """(B, H) final states, by autograd through the plain per-step loop with the encoder's own modules: what the
    fast recurrence must equal, and what any encoder whose ODE it does not compute (fastpath.py) runs."""
    steps = batch.steps
    cell = encoder.cell
    active = torch.arange(steps.shape[1], device=steps.device)[:, None] < batch.lengths[None, :]  # (L, B)
    h = steps.new_zeros(steps.shape[0], encoder.hidden)
    for j in range(steps.shape[1]):
        x = steps[:, j]
        moved = torch.gru_cell(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        drift = encoder.ode(moved)
        moved = moved - x[:, -1:] * drift  # backwards in time by the gap
        h = torch.where(active[j][:, None], moved, h)
    return h


def odernn(encoder: ODERNNEncoder, batch: EncoderBatch) -> torch.Tensor:
    """(B, H) final states of `batch` (steps (B, L, F), lengths (B,)); differentiable in the encoder's parameters,
    not in the steps (data: steps that require grad take `odernn_reference`, as does an encoder whose ODE is not
    Linear, tanh, Linear: fastpath.py)."""
    if batch.steps.requires_grad or not is_fast_odernn(encoder):
        return odernn_reference(encoder, batch)
    params = _parameters(encoder)
    if torch.is_grad_enabled() and any(p.requires_grad for p in params):
        return cast(torch.Tensor, _OdeRnn.apply(batch.steps, batch.lengths, *params))
    with torch.no_grad():
        packing = _Packing(batch.steps, batch.lengths)
        return packing.unsort(_forward(packing, _Weights(*params), save=False)["h"])


def _parameters(encoder: ODERNNEncoder) -> list[torch.Tensor]:
    cell, (first, last) = encoder.cell, odernn_ode(encoder)  # NotFastPath for any other ODE
    return [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, first.weight, first.bias, last.weight,
            last.bias]


def _buffers(like: torch.Tensor, rows: int, widths: list[int]) -> list[torch.Tensor]:
    """Uninitialised (rows, width) tensors, one per width, cut from one allocation: a few large blocks come back
    from the allocator without fresh pages, where many are each faulted in anew on some machines (a VM here)."""
    flat = like.new_empty(rows * sum(widths))
    return [part.view(rows, w) for part, w in zip(flat.split([rows * w for w in widths]), widths, strict=True)]


class _Packing:
    """The batch sorted by length, longest first, its steps packed step after step: step j is the first counts[j]
    sorted contexts, rows offsets[j] ... offsets[j] + counts[j] − 1 of x (N, F + 1), N = the sum of the lengths;
    x's last column is 1 (for the biases)."""

    def __init__(self, steps: torch.Tensor, lengths: torch.Tensor) -> None:
        batch, longest = steps.shape[:2]
        lengths = lengths.clamp(0, longest)  # as the reference's mask reads them
        self.order = torch.argsort(lengths, descending=True, stable=True)
        self.lengths = lengths[self.order]
        used = int(self.lengths[0]) if batch else 0
        active = torch.arange(used, device=steps.device)[:, None] < self.lengths[None, :]  # (used, B)
        self.counts: list[int] = active.sum(dim=1).tolist()
        self.offsets = [0] * len(self.counts)
        for j in range(1, len(self.counts)):
            self.offsets[j] = self.offsets[j - 1] + self.counts[j - 1]
        packed = steps[self.order, :used].transpose(0, 1)[active]
        self.x = torch.cat([packed, packed.new_ones(packed.shape[0], 1)], dim=1)
        self.batch = batch

    def groups(self, rows: int) -> list[tuple[int, int]]:
        """Runs of steps [j0, j1) of at most `rows` packed rows together (or a single step), covering all steps."""
        out = []
        j0 = 0
        while j0 < len(self.counts):
            j1, size = j0 + 1, self.counts[j0]
            while j1 < len(self.counts) and size + self.counts[j1] <= rows:
                size += self.counts[j1]
                j1 += 1
            out.append((j0, j1))
            j0 = j1
        return out

    def final_rows(self) -> torch.Tensor:
        """(counts[0],) the row of x where each sorted context with at least one step has its last step."""
        ends = self.lengths[: self.counts[0]] - 1
        return torch.as_tensor(self.offsets, device=ends.device)[ends] + torch.arange(ends.numel(), device=ends.device)

    def previous_rows(self) -> torch.Tensor:
        """(N − counts[0],) for each row of x after step 0, the row of the same context at the step before."""
        counts = torch.as_tensor(self.counts, device=self.x.device)
        after = torch.arange(self.counts[0], self.x.shape[0], device=self.x.device)
        return after - counts[:-1].repeat_interleave(counts[1:])

    def unsort(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, ...) rows in sorted order back in the batch's order."""
        out = torch.empty_like(rows)
        out[self.order] = rows
        return out


class _Weights:
    """The parameters (in `_parameters` order) in the forms the loops use.

    ih_t (F + 1, 4H): x [1] times it is [x W_irᵀ + b_ir + b_hr | x W_izᵀ + b_iz + b_hz | b_hn | x W_inᵀ + b_in], the
    gates' pre-activations but for their terms in h. The ODE's layers are folded as folded.py's: σ of the
    hidden layer's output is s = σ(2a), tanh(a) = 2s − 1, and the output layer takes s."""

    def __init__(self, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor,
                 w_1: torch.Tensor, b_1: torch.Tensor, w_2: torch.Tensor, b_2: torch.Tensor) -> None:
        hidden = w_hh.shape[1]
        self.hidden, self.units = hidden, w_1.shape[0]
        ih = torch.cat([w_ih, b_ih[:, None]], dim=1)
        self.ih_t = torch.cat([ih[: 2 * hidden], ih.new_zeros(hidden, ih.shape[1]), ih[2 * hidden:]]).t()
        self.ih_t[-1, : 3 * hidden] += b_hh
        self.hh_t = w_hh.t()
        (self.w_1_t, self.w_2_t), (self.b_1, self.b_2) = fold([w_1, w_2], [b_1, b_2])


def _forward(packing: _Packing, w: _Weights, save: bool) -> dict[str, torch.Tensor]:
    """The recurrence without autograd. save=False: {"h": (B, H) final states in sorted order}. save=True: per packed
    row (N, ·), what the backward pass needs: "h" the state after the step, "gates" [r | z | h W_hnᵀ + b_hn | n] (h the
    state before), "m" the GRU output, "s" = σ(2a) of the ODE's hidden layer."""
    x, counts, hidden, batch = packing.x, packing.counts, w.hidden, packing.batch
    if save:
        gates, h, m, s = _buffers(x, x.shape[0], [4 * hidden, hidden, hidden, w.units])
        h_all, m_all, s_all = h.split(counts), m.split(counts), s.split(counts)
        groups = packing.groups(x.shape[0])  # all steps at once
    else:  # only the state is kept, in place
        gates = x.new_empty(min(x.shape[0], max(_NO_GRAD_ROWS, batch)), 4 * hidden)
        h, m, s = x.new_zeros(batch, hidden), x.new_empty(batch, hidden), x.new_empty(batch, w.units)
        h_all, m_all, s_all = ([t[:k] for k in counts] for t in (h, m, s))
        groups = packing.groups(gates.shape[0])
    drift, zeros = x.new_empty(batch, hidden), x.new_zeros(counts[0] if counts else 0, hidden)
    columns = [(0, 3 * hidden), (0, 2 * hidden), (0, hidden), (hidden, 2 * hidden), (2 * hidden, 3 * hidden),
               (3 * hidden, 4 * hidden)]
    for j0, j1 in groups:
        start, stop = packing.offsets[j0], packing.offsets[j1 - 1] + counts[j1 - 1]
        block = torch.mm(x[start:stop], w.ih_t, out=gates[start:stop] if save else gates[: stop - start])
        views = [block[:, a:b].split(counts[j0:j1]) for a, b in columns]
        for j, dt, pre, rz, r, z, hn, n in zip(range(j0, j1), x[start:stop, -2:-1].split(counts[j0:j1]), *views,
                                               strict=True):
            k = dt.shape[0]
            if j == 0:
                h_prev = zeros
            else:
                h_prev = h_all[j - 1][:k] if save else h_all[j]
                pre.addmm_(h_prev, w.hh_t)
            rz.sigmoid_()
            sigmoid_tanh(n.addcmul_(r, hn), inplace=True)  # tanh: see the module docstring
            torch.lerp(n, h_prev, z, out=m_all[j])
            torch.addmm(w.b_1, m_all[j], w.w_1_t, out=s_all[j]).sigmoid_()
            d = torch.addmm(w.b_2, s_all[j], w.w_2_t, out=drift[:k])
            torch.addcmul(m_all[j], dt, d, value=-1, out=h_all[j])
    if not save:
        return {"h": h}
    return {"h": h, "gates": gates, "m": m, "s": s}


class _Context(Protocol):
    """What `_OdeRnn.forward` leaves on autograd's ctx for `backward` (and autograd's own saved tensors)."""

    packing: _Packing
    saved_tensors: tuple[torch.Tensor, ...]

    def save_for_backward(self, *tensors: torch.Tensor) -> None: ...


class _OdeRnn(torch.autograd.Function):
    """steps (B, L, F), lengths (B,), then the parameters in `_parameters` order -> (B, H) final states."""

    @staticmethod
    def forward(ctx: _Context, steps: torch.Tensor, lengths: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        packing = _Packing(steps, lengths)
        saved = _forward(packing, _Weights(*params), save=True)
        final = steps.new_zeros(steps.shape[0], params[1].shape[1])
        if packing.counts:
            final[packing.order[: packing.counts[0]]] = saved["h"][packing.final_rows()]
        ctx.packing = packing
        ctx.save_for_backward(saved["h"], saved["gates"], saved["m"], saved["s"], *params)
        return final

    @staticmethod
    @once_differentiable
    def backward(ctx: _Context, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        packing = ctx.packing
        h, gates, m, s, *params = ctx.saved_tensors
        if not packing.counts:  # no context has a step
            return None, None, *(torch.zeros_like(p) for p in params)
        w_hh, w_1, w_2 = params[1], params[4], params[6]
        x, counts, first, hidden, units = packing.x, packing.counts, packing.counts[0], w_hh.shape[1], w_1.shape[0]
        dt = x[:, -2:-1]
        r, z, hn, n = (gates[:, i * hidden : (i + 1) * hidden] for i in range(4))
        h_prev, ode, n_factor, z_factor, r_factor, grad_h, grad_a, grad_pre = _buffers(
            x, x.shape[0], [hidden, units, hidden, hidden, hidden, hidden, units, 4 * hidden])
        h_prev = torch.index_select(h, 0, packing.previous_rows(), out=h_prev[first:])  # the state before steps 1...
        # Per row, the factors that turn dL/dh (the state after the step) into dL/da (a: the ODE's hidden layer), and
        # dL/dm into the gates' dL/d(pre-activation), σ' = σ(1 − σ) and tanh' = 1 − tanh²:
        torch.addcmul(s, s, s, value=-1, out=ode).mul_(dt * -4)  # dL/d(drift) = −dt dL/dh, tanh(a)' = 4s(1 − s)
        torch.addcmul(n.new_ones(()), n, n, value=-1, out=n_factor).addcmul_(n_factor, z, value=-1)  # (1 − z) n'
        torch.neg(n[:first], out=z_factor[:first])
        torch.sub(h_prev, n[first:], out=z_factor[first:])
        z_factor.mul_(torch.addcmul(z, z, z, value=-1, out=r_factor))  # (h − n) z', r_factor as scratch
        torch.addcmul(r, r, r, value=-1, out=r_factor).mul_(hn)  # (h W_hnᵀ + b_hn) r'
        # dL/d(state after the step), and dL/d of the gates' pre-activations [r | z | h W_hnᵀ + b_hn | n]:
        grad_h[packing.final_rows()] = grad[packing.order[:first]]
        grad_h_all = grad_h.split(counts)
        dh_w_2, grad_m = grad_a.new_empty(first, units), grad_h.new_empty(first, hidden)  # per-step scratch
        per_step = zip(grad_h_all, grad_a.split(counts), ode.split(counts), n_factor.split(counts),
                       z_factor.split(counts), r_factor.split(counts), r.split(counts), z.split(counts),
                       *(grad_pre[:, i * hidden : (i + 1) * hidden].split(counts) for i in range(4)),
                       grad_pre[:, : 3 * hidden].split(counts), strict=True)
        for j, (g, a, ode_j, f_n, f_z, f_r, r_j, z_j, d_r, d_z, d_hn, d_n, d_hh) in reversed(list(enumerate(per_step))):
            k = g.shape[0]
            torch.mul(torch.mm(g, w_2, out=dh_w_2[:k]), ode_j, out=a)
            dm = torch.addmm(g, a, w_1, out=grad_m[:k])
            torch.mul(dm, f_n, out=d_n)
            torch.mul(dm, f_z, out=d_z)
            torch.mul(d_n, f_r, out=d_r)
            torch.mul(d_n, r_j, out=d_hn)
            if j:
                torch.addmm(dm.mul_(z_j), d_hh, w_hh, out=grad_h_all[j - 1][:k])
        # Every parameter's gradient, summed over all steps by one product each:
        by_input = x.t() @ grad_pre  # (F + 1, 4H); its last row, from x's ones, sums grad_pre's rows
        d_w_ih = torch.cat([by_input[:-1, : 2 * hidden], by_input[:-1, 3 * hidden:]], dim=1).t()
        d_b_ih = torch.cat([by_input[-1, : 2 * hidden], by_input[-1, 3 * hidden:]])
        d_w_hh = (h_prev.t() @ grad_pre[first:, : 3 * hidden]).t()
        d_w_1 = (m.t() @ grad_a).t()
        d_b_2 = (grad_h.t() @ dt)[:, 0].neg_()  # dL/d(drift) = −dt dL/dh
        d_w_2 = (grad_h.t() @ torch.mul(s, dt, out=ode)).mul_(-2).sub_(d_b_2[:, None])  # tanh(a) = 2s − 1
        return (None, None, d_w_ih, d_w_hh, d_b_ih, by_input[-1, : 3 * hidden], d_w_1, grad_a.sum(dim=0), d_w_2,
                d_b_2)
