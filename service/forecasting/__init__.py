"""Forecasts from trained model versions. The routes call `forecast.answer` alone.

    query        the request's times (`at`, `start`/`end`/`step`) and samples, checked before the model's door
    forecast     the entry: `answer(ForecastRequest)` plans (version, limits, context), solves, answers
    versions     which ready version answers, its limits from its row, its warnings, where its artifact is read
    cache        loaded models (in the solvers only), least recently used first out, bounded in bytes
    batcher      concurrent requests for one version solved in one batch
    solver_pool  the solvers: child processes away from the API's GIL, or threads of this process; the only
                 place a model is rebuilt from its artifact

Reads the database through service.storage; parses inline observations with service.ingest.
"""
