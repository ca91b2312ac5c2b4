"""The numpy array types the model library's annotations use (numpy's own stubs check them; see [tool.mypy]),
and `evenly`, the indices of a sample spread evenly over an array."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "IntArray", "BoolArray", "evenly"]

FloatArray: TypeAlias = npt.NDArray[np.float64]  # times (s or model time), values, scales, errors
IntArray: TypeAlias = npt.NDArray[np.intp]  # indices and counts
BoolArray: TypeAlias = npt.NDArray[np.bool_]  # masks


def evenly(size: int, most: int) -> IntArray:
    """Indices (increasing, distinct) of at most `most` of `size` items spread evenly by index, the first and the
    last among them: all of them where `size` <= `most`. (Season finding and a long context's fit read such a
    sample of the points where there are too many to read them all.)"""
    return np.unique(np.linspace(0, size - 1, min(size, most)).round().astype(np.intp))
