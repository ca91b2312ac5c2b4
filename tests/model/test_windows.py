import numpy as np

from model import ModelConfig, Sequence
from model.data import Normaliser
from model.windows import draw_examples, window_spans


def test_long_series_cut_into_windows_with_context_first():
    t = np.cumsum(np.random.default_rng(0).uniform(0.5, 1.5, 200))  # ~200 s, irregular
    seq = Sequence(1.7e9 + t, np.sin(t / 7), ("a",))
    config = ModelConfig(window=20.0, context_fraction=0.5)
    spans = window_spans([seq], config)
    assert spans.tolist() == [20.0]
    norm = Normaliser.fit([seq], spans, config.time_span)
    examples = draw_examples([seq], norm, config, np.random.default_rng(1))
    assert 5 <= len(examples) <= 10  # about duration / window
    for e in examples:
        assert e.tgt_t[0] == 0.0 and e.tgt_t[-1] * norm.time_scale <= 20.0
        assert e.ctx_t[-1] <= 0.5 * e.tgt_t[-1] < e.tgt_t[-1]
        np.testing.assert_array_equal(e.ctx_x, e.tgt_x[: e.ctx_t.size])


def test_context_keep_subsamples_the_whole_window():
    t = np.arange(100.0)
    seq = Sequence(t, np.cos(t), ("a",))
    config = ModelConfig(context_fraction=1.0, context_keep=0.5)
    norm = Normaliser.fit([seq], window_spans([seq], config), config.time_span)
    (example,) = draw_examples([seq], norm, config, np.random.default_rng(0))
    assert 30 < example.ctx_t.size < 70 and example.tgt_t.size == 100
    assert example.ctx_t[-1] > 0.8 * example.tgt_t[-1]
