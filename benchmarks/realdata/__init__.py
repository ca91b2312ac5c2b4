"""The real-data benchmark's parts (benchmarks/realdata_bench.py runs them).

    data       the data sets: one loader per name in `LOADERS`, each giving `Series` on their native grids
    protocol   thinning, the train/held-out/test split and the scores (numpy only: the tests import it without
               the `bench` extra)
    baselines  last value, drift, seasonal naive, GP, ETS, ARIMA (statsmodels is imported where it is used)
    evaluate   every method's scores on one split: the baselines, linear interpolation, a fitted model
    report     averages over seeds, the markdown table and the targets
"""
