"""NumbersResponse (msgspec) writes the document Starlette's JSONResponse (the standard library's json) writes."""

import json
import math

import numpy as np
from fastapi.responses import JSONResponse

from service.api.responses import NumbersResponse


def test_the_same_document_as_jsonresponse() -> None:
    rng = np.random.default_rng(0)
    floats = [float(x) for x in rng.standard_normal(200) * 10.0 ** rng.integers(-30, 30, 200)]
    floats += [0.0, -0.0, 0.1, 1e-5, 1e22, 5e-324, 1.7976931348623157e308, 123456789.123456789, 2.0**53 + 2]
    doc = {"series": "température/°C", "model": {"name": "m", "version": 3}, "t": ["2026-01-01T00:00:00.000001Z"],
           "kind": ["interpolation"], "channels": {"ü": {"mean": floats, "std": [None, 1.5], "quantiles": {}}},
           "warnings": ["it lost to the last value — by 12%"], "next_cursor": None}
    fast, plain = NumbersResponse(doc), JSONResponse(doc)
    assert fast.media_type == plain.media_type == "application/json"
    assert json.loads(fast.body) == json.loads(plain.body) == doc
    # every float comes back to the same bits, signed zero included
    back = json.loads(fast.body)["channels"]["ü"]["mean"]
    assert [math.copysign(1.0, x) for x in back] == [math.copysign(1.0, x) for x in floats]
    assert fast.body.decode("utf-8")  # UTF-8, non-ASCII kept as it is
    assert "température" in fast.body.decode("utf-8")
