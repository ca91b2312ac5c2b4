"""The numpy array types the model library's annotations use (numpy's own stubs check them; see [tool.mypy])."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "IntArray", "BoolArray"]

FloatArray: TypeAlias = npt.NDArray[np.float64]  # times (s or model time), values, scales, errors
IntArray: TypeAlias = npt.NDArray[np.intp]  # indices and counts
BoolArray: TypeAlias = npt.NDArray[np.bool_]  # masks
