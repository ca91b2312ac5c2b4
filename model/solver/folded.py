"""`FoldedMLP`: our Tanh MLP evaluated and differentiated by hand, for the training solves (backprop.py,
adjoint.py).

tanh(u) = 2σ(2u) − 1 is folded into the weights, so that each hidden layer is one matrix product and one in-place
sigmoid: hidden layer l outputs s_l = σ(2u_l), its tanh being 2s_l − 1. torch 2.13's CPU tanh is slow (see
model/network.py's Tanh) and every op with a Python scalar costs a dispatch and a scalar tensor, so this form takes
5 ops per evaluation of a 2-hidden-layer MLP where nn.Sequential takes 11.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FoldedMLP", "fold", "sigmoid_tanh"]


def sigmoid_tanh(x: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
    """tanh(x) as 2·σ(2x) − 1, without autograd (`inplace`: into x itself): the same function to float32 rounding,
    and faster than torch 2.13's CPU tanh (see model/network.py's Tanh). Used where the tanh cannot be folded."""
    return (x.mul_(2) if inplace else x * 2).sigmoid_().mul_(2).sub_(1)


def _right_operand(matrix: torch.Tensor) -> torch.Tensor:
    """`matrix` (k, n) in the memory layout that multiplies fastest from the right: a product with few outputs (n <
    k) runs faster on the transpose of a contiguous (n, k) (150×100 times 100×10: 7 µs against 9.5 on two threads,
    10 against 15 on one), the others on a contiguous (k, n)."""
    if matrix.shape[1] < matrix.shape[0]:
        return matrix.t().contiguous().t()
    return matrix.contiguous()


def fold(weights: list[torch.Tensor], biases: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The folded form of Linear layers (weights (out, in), biases (out,)) with tanh between them: per layer the right
    operand (in, out) and bias of its product, its input being s = σ(2u) of the layer before (tanh(u) = 2s − 1) and
    its output going to σ (all layers but the last)."""
    rights, folded = [], []
    for index, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        if index > 0:  # its input is 2s − 1
            weight, bias = 2 * weight, bias - weight.sum(dim=1)
        if index < len(weights) - 1:  # its output goes to σ(2u)
            weight, bias = 2 * weight, 2 * bias
        rights.append(_right_operand(weight.t()))
        folded.append(bias)
    return rights, folded


def _wide_zeros(weight: torch.Tensor) -> torch.Tensor:
    """Zeros shaped as `weight` (out, in), laid out so that rows in memory are the longer side: a sum of products
    gᵀ·x (N = 150 rows) adds into it fastest so (100×150 times 150×10 into a (10, 100) transposed: 6 µs, into a
    (100, 10) contiguous: 10.5, two threads)."""
    if weight.shape[0] > weight.shape[1]:
        return weight.new_zeros(weight.shape[1], weight.shape[0]).t()
    return torch.zeros_like(weight, memory_format=torch.contiguous_format)


class FoldedMLP:
    """f(z) of `layers` (nn.Linear with Tanh between them), its vector-Jacobian products and their parameter sums.

    Built from the layers' current weights, differentiably where grad mode is on (tests compare with autograd)."""

    def __init__(self, layers: list[nn.Linear]) -> None:
        self.layers = layers
        self.weights, self.biases = fold([layer.weight for layer in layers], [layer.bias for layer in layers])
        # ∂/∂s of each layer after the first, times the 2 of tanh' = 4 s (1 − s)
        self.back = [4 * layer.weight for layer in layers[1:]]
        self.first = _right_operand(layers[0].weight)  # for g·∂f/∂z

    def __call__(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """f(z) (N, D) and the layers' inputs [z, s_1, ..., s_L], for `backward`."""
        inputs = [z]
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            inputs.append(torch.addmm(bias, inputs[-1], weight).sigmoid_())
        return torch.addmm(self.biases[-1], inputs[-1], self.weights[-1]), inputs

    def backward(self, inputs: list[torch.Tensor], g: torch.Tensor,
                 sums: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None,
                 ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """g·∂f/∂z (N, D) at the evaluation whose layer inputs are `inputs`, and the gradient at each layer's
        output (pre-activation), for `accumulate`; g (N, D). Given `sums` (weight_sums, output_sums from `sums`), it
        also does `accumulate`'s work (scale 1) layer by layer, while each layer's gradient is fresh in cache."""
        outputs = [g]
        for index in range(len(self.layers) - 1, -1, -1):
            if sums is not None:
                sums[0][index].addmm_(g.t(), inputs[index])
                sums[1][index].add_(g)
            if index:
                s = inputs[index]
                g = torch.mm(g, self.back[index - 1]).mul_(torch.addcmul(s, s, s, value=-1))
                outputs.append(g)
        outputs.reverse()
        return torch.mm(g, self.first), outputs

    @staticmethod
    def accumulate(inputs: list[torch.Tensor], outputs: list[torch.Tensor], weight_sums: list[torch.Tensor],
                   output_sums: list[torch.Tensor], scale: float = 1.0) -> None:
        """Add scale · outputᵀ·input to weight_sums[l] ((out, in)) and scale · output to output_sums[l] ((N, out)):
        g·∂f/∂θ summed over evaluations; `param_grads` turns the sums into the parameters' gradients."""
        for x, g, weight, output in zip(inputs, outputs, weight_sums, output_sums, strict=True):
            weight.addmm_(g.t(), x, alpha=scale)
            output.add_(g, alpha=scale)

    def param_vjp(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """g·∂f/∂θ of one evaluation (θ in parameter order: weight, bias per layer), from `backward`'s outputs."""
        return self.param_grads([g.t() @ x for x, g in zip(inputs, outputs, strict=True)], outputs)

    def sums(self, rows: int, like: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Zeroed weight_sums and output_sums for `accumulate`, for evaluations of `rows` rows."""
        return ([_wide_zeros(layer.weight) for layer in self.layers],
                [like.new_zeros(rows, layer.out_features) for layer in self.layers])

    @staticmethod
    def param_grads(weight_sums: list[torch.Tensor], output_sums: list[torch.Tensor]) -> list[torch.Tensor]:
        """Gradients of (weight, bias) per layer from `accumulate`'s sums (a layer's input is 2s − 1, not s, for
        l > 0)."""
        grads = []
        for index, (weight, output) in enumerate(zip(weight_sums, output_sums, strict=True)):
            bias = output.sum(dim=0)
            grads += [weight if index == 0 else 2 * weight - bias[:, None], bias]
        return grads
