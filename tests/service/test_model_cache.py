import threading
import time

from service.forecasting.cache import CacheKey, ModelCache


def _key(i: int, sha: str = "a") -> CacheKey:
    return CacheKey(i, 1, sha)


def test_loads_once_and_then_hits() -> None:
    cache: ModelCache[str] = ModelCache(100)
    loads = []
    assert cache.get(_key(1), 10, lambda: loads.append(1) or "m1") == "m1"
    assert cache.get(_key(1), 10, lambda: loads.append(1) or "other") == "m1"
    assert loads == [1]
    assert (cache.hits, cache.misses) == (1, 1)


def test_evicts_least_recently_used_beyond_the_byte_bound() -> None:
    cache: ModelCache[str] = ModelCache(25)
    cache.get(_key(1), 10, lambda: "m1")
    cache.get(_key(2), 10, lambda: "m2")
    cache.get(_key(1), 10, lambda: "unused")  # 1 is now the most recent
    cache.get(_key(3), 10, lambda: "m3")
    assert cache.keys() == [_key(1), _key(3)]
    assert cache.size_bytes == 20


def test_an_entry_larger_than_the_bound_is_kept_alone() -> None:
    cache: ModelCache[str] = ModelCache(25)
    cache.get(_key(1), 10, lambda: "m1")
    assert cache.get(_key(2), 40, lambda: "big") == "big"
    assert cache.keys() == [_key(2)]


def test_a_new_artifact_is_a_new_entry_and_retain_drops_the_rest() -> None:
    cache: ModelCache[str] = ModelCache(100)
    cache.get(_key(1, "old"), 10, lambda: "old")
    assert cache.get(_key(1, "new"), 10, lambda: "new") == "new"
    cache.get(_key(2), 10, lambda: "m2")
    cache.retain([_key(1, "new")])
    assert cache.keys() == [_key(1, "new")]


def test_concurrent_misses_load_once() -> None:
    cache: ModelCache[str] = ModelCache(100)
    calls = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "m"

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(_key(1), 10, slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["m"] * 8
    assert calls == [1]


def test_a_failed_load_is_not_cached() -> None:
    cache: ModelCache[str] = ModelCache(100)

    def boom() -> str:
        raise RuntimeError("bad artifact")

    try:
        cache.get(_key(1), 10, boom)
    except RuntimeError:
        pass
    assert cache.keys() == []
    assert cache.get(_key(1), 10, lambda: "m") == "m"


def test_retain_is_due_at_first_and_then_once_per_period(monkeypatch) -> None:
    import service.forecasting.cache as mc

    now = [100.0]
    monkeypatch.setattr(mc.time, "monotonic", lambda: now[0])
    cache = ModelCache(capacity_bytes=10)
    assert cache.retain_due(10.0)
    assert not cache.retain_due(10.0)
    now[0] += 9.9
    assert not cache.retain_due(10.0)
    now[0] += 0.2
    assert cache.retain_due(10.0) and not cache.retain_due(10.0)
