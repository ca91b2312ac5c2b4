"""Forecasts from trained model versions, inside the API process.

    query        the request's times (`at`, `start`/`end`/`step`) and samples, checked before the model's door
    forecast     the glue: context from the database or the request body, the model's input, the response body
    versions     which ready version answers, its loaded model from the cache, and its warnings
    cache        loaded models, least recently used first out, bounded in bytes
    batcher      concurrent requests for one version solved in one batch
    solver_pool  the batches solved in child processes, away from the API's GIL

Reads the database through service.storage; parses inline observations with service.ingest.
"""
