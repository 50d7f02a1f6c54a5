"""Duplicate indexes: the in-memory one and the Redis one (against a real redis-server)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator

import pytest

from celery_core.crawler.dedup.index import (
    DedupIndex,
    LocalDedupIndex,
    band_spans,
    band_values,
    seed_index,
)
from celery_core.crawler.dedup.redis_index import RedisDedupIndex
from tests.support.redis_proc import RedisProcess

SHA = [f"{i:064x}" for i in range(100)]


def flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


@pytest.fixture(params=["local", "redis"])
def make_index(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[..., DedupIndex]]:
    if request.param == "local":
        yield lambda threshold=6, dataset="d": LocalDedupIndex(threshold)
        return
    server = RedisProcess(tmp_path / "redis").start()
    clients = []

    def factory(threshold: int = 6, dataset: str = "d") -> DedupIndex:
        client = server.client()
        clients.append(client)
        return RedisDedupIndex(client, dataset, threshold, ttl_s=3600)

    try:
        yield factory
    finally:
        for client in clients:
            client.close()
        server.stop()


@pytest.mark.parametrize("threshold", [0, 3, 6, 10])
def test_bands_guarantee_a_shared_band_within_the_threshold(threshold: int) -> None:
    spans = band_spans(threshold)
    assert sum(bits for _, bits in spans) == 64 and len(spans) == threshold + 1
    rnd = random.Random(threshold)
    for _ in range(2000):
        a = rnd.getrandbits(64)
        b = flip(a, rnd.sample(range(64), threshold))
        assert set(enumerate(band_values(a, spans))) & set(enumerate(band_values(b, spans)))


def test_exact_duplicates_name_the_kept_path(make_index: Callable[..., DedupIndex]) -> None:
    index = make_index()
    first = index.claim(SHA[1], 0x1234, "cats/a/0001.jpg")
    assert first.kept
    again = index.claim(SHA[1], 0xFFFF_0000_FFFF_0000, "cats/a/0002.jpg")
    assert (again.kept, again.kind, again.duplicate_of) == (False, "exact", "cats/a/0001.jpg")


def test_near_duplicates_within_the_threshold(make_index: Callable[..., DedupIndex]) -> None:
    index = make_index(threshold=6)
    rnd = random.Random(1)
    base = rnd.getrandbits(64)
    assert index.claim(SHA[0], base, "k/0001.jpg").kept
    # 6 bits spread over the whole hash: no 16-bit quarter is left intact.
    near = flip(base, [0, 17, 33, 49, 60, 63])
    result = index.claim(SHA[1], near, "k/0002.jpg")
    assert (result.kept, result.kind, result.duplicate_of, result.distance) == (
        False,
        "near",
        "k/0001.jpg",
        6,
    )
    far = flip(base, [0, 9, 17, 25, 33, 41, 49])
    assert index.claim(SHA[2], far, "k/0003.jpg").kept
    # A claim may ask for a stricter threshold than the index's.
    assert index.claim(SHA[3], flip(base, [1, 2, 3]), "k/0004.jpg", threshold=2).kept


def test_closest_match_is_reported(make_index: Callable[..., DedupIndex]) -> None:
    index = make_index()
    base = 0x0123_4567_89AB_CDEF
    # Added without checks (as when seeding), so all three sit within reach of `base`.
    index.add(SHA[0], flip(base, [1, 2, 3, 4, 5]), "far.jpg")
    index.add(SHA[1], flip(base, [40, 50, 63]), "other.jpg")
    index.add(SHA[2], flip(base, [10]), "close.jpg")
    result = index.claim(SHA[3], base, "new.jpg")
    assert (result.duplicate_of, result.distance) == ("close.jpg", 1)


def test_release_undoes_a_claim(make_index: Callable[..., DedupIndex]) -> None:
    index = make_index()
    assert index.claim(SHA[0], 42, "a.jpg").kept
    index.release(SHA[0], "a.jpg")
    assert index.claim(SHA[0], 42, "b.jpg").kept
    assert index.claim(SHA[1], 43, "c.jpg").duplicate_of == "b.jpg"


def test_seeding_from_existing_entries(make_index: Callable[..., DedupIndex]) -> None:
    index = make_index()
    assert seed_index(index, [(SHA[0], 1000, "old/0001.jpg"), (SHA[1], 2**63, "old/0002.jpg")]) == 2
    seed_index(index, [(SHA[0], 1000, "old/0001.jpg")])  # seeding twice is harmless
    assert index.claim(SHA[0], 5, "new.jpg").duplicate_of == "old/0001.jpg"
    assert index.claim(SHA[9], 2**63 + 1, "new.jpg").duplicate_of == "old/0002.jpg"


def test_concurrent_redis_claims_keep_exactly_one(redis_proc: RedisProcess) -> None:
    clients = [redis_proc.client() for _ in range(8)]  # one connection per "worker"
    indexes = [RedisDedupIndex(client, "race") for client in clients]
    barrier = threading.Barrier(len(indexes))
    kept: list[str] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        barrier.wait()
        # The same picture as each worker got it: other bytes, a bit or so of hash noise.
        result = indexes[i].claim(SHA[10 + i], flip(0xABCDEF, [i]), f"w{i}.jpg")
        if result.kept:
            with lock:
                kept.append(f"w{i}.jpg")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(indexes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for client in clients:
        client.close()
    assert len(kept) == 1


def test_local_index_is_shared_by_threads() -> None:
    index = LocalDedupIndex()
    barrier = threading.Barrier(8)
    results = []

    def claim(i: int) -> None:
        barrier.wait()
        results.append(index.claim(SHA[0], 7, f"t{i}.jpg").kept)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [False] * 7 + [True]


def test_redis_keys_expire_and_datasets_are_separate(redis_proc: RedisProcess) -> None:
    with redis_proc.client() as client:
        one = RedisDedupIndex(client, "job-1", ttl_s=600)
        two = RedisDedupIndex(client, "job-2", ttl_s=600)
        assert one.claim(SHA[0], 1, "a.jpg").kept
        assert two.claim(SHA[0], 1, "a.jpg").kept
        for key in one.keys[:4]:
            assert 0 < client.pttl(key) <= 600_000
        assert len(one) == 1
        one.clear()
        assert client.exists(*one.keys) == 0
        assert two.claim(SHA[0], 1, "b.jpg").duplicate_of == "a.jpg"


def test_redis_refuses_a_mixed_band_layout(redis_proc: RedisProcess) -> None:
    import redis

    with redis_proc.client() as client:
        RedisDedupIndex(client, "job", threshold=6).claim(SHA[0], 1, "a.jpg")
        with pytest.raises(redis.ResponseError, match="bands"):
            RedisDedupIndex(client, "job", threshold=3).claim(SHA[1], 2, "b.jpg")


def test_threshold_above_the_index_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        LocalDedupIndex(threshold=4).claim(SHA[0], 1, "a.jpg", threshold=6)
