"""Observations in: request bodies (rows JSON, columns JSON, text/csv) → one validated batch, or a 422 naming every
bad field. The parsers are in `parse`, the fast path for well-formed JSON (msgspec) in `fastjson`, held to `parse`
by its tests; the names the API and forecasting use are re-exported here.

Imports nothing of the service but its errors and service.times: no database, no model.
"""

from service.ingest.parse import VALUE_RANGE, Batch, decode_json, parse_observation_document, parse_observations

__all__ = ["Batch", "VALUE_RANGE", "decode_json", "parse_observation_document", "parse_observations"]
