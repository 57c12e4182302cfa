"""map_in_order on the real two-node cluster: order, both nodes used, a worker killed mid-run, errors unwrapped."""

from __future__ import annotations

import functools

import pytest

from edgezoo.core.errors import DatasetError
from edgezoo.distributed import PoolStats, map_in_order, parse_ray_target, ray_session
# Imported under their package name: the actors unpickle them by reference (tests.distributed.*).
from tests.distributed.pool_functions import CpuHolder, LoggedModel, fails_on_three, square_factory


def test_order_and_both_nodes(ray_cluster, tmp_path):
    items = list(range(40))
    stats = PoolStats()
    with ray_session(parse_ray_target(ray_cluster.address)) as session:
        assert session.nodes == 2 and session.cpus == 2
        out = map_in_order(functools.partial(square_factory, str(tmp_path), None), items, actors=2, shard_size=3,
                           progress=False, stats=stats)
    assert out == [x * x for x in items]
    assert stats.nodes == 2 and stats.died == 0 and sum(stats.hosts.values()) == 14  # ceil(40 / 3) shards


def test_killed_worker_is_retried_elsewhere_nothing_lost_or_doubled(ray_cluster, tmp_path):
    items = list(range(30))
    stats = PoolStats()
    with ray_session(parse_ray_target(ray_cluster.address)):
        out = map_in_order(functools.partial(square_factory, str(tmp_path), 13), items, actors=2, shard_size=4,
                           progress=False, stats=stats)
    assert out == [x * x for x in items]  # every item once, in order
    assert stats.died == 1 and stats.retried_shards >= 1
    killed = int((tmp_path / "died").read_text())
    # 13 was computed after the kill, by another process; the dead one logged nothing for it.
    done_13 = [p.name.split("-")[1] for p in tmp_path.iterdir() if p.name.startswith("13-")]
    assert done_13 and str(killed) not in done_13


def test_function_error_is_raised_unwrapped(ray_cluster):
    with ray_session(parse_ray_target(ray_cluster.address)):
        with pytest.raises(DatasetError, match="image 3 cannot be decoded"):
            map_in_order(fails_on_three, list(range(8)), actors=2, shard_size=2, progress=False)


def test_busy_cluster_runs_with_the_actors_that_start(ray_cluster, tmp_path):
    """Another run holds one of the two CPUs: the pool goes on with the actor that could start, within the bound."""
    import ray

    with ray_session(parse_ray_target(ray_cluster.address)):
        holder = ray.remote(num_cpus=1)(CpuHolder).remote()
        ray.get(holder.ping.remote())
        stats = PoolStats()
        out = map_in_order(functools.partial(square_factory, str(tmp_path), None), list(range(10)), actors=2,
                           shard_size=2, progress=False, start_timeout=5, stats=stats)
        ray.kill(holder)
    assert out == [x * x for x in range(10)] and stats.actors == 1 and len(stats.hosts) == 1


def test_no_actor_left_is_an_error_not_a_short_result(ray_cluster, tmp_path):
    from edgezoo.distributed import ClusterError

    with ray_session(parse_ray_target(ray_cluster.address)):
        with pytest.raises(ClusterError, match=r"every Ray actor died \(1: "):
            map_in_order(functools.partial(square_factory, str(tmp_path), 5), list(range(10)), actors=1,
                         replacements=0, shard_size=2, progress=False)


def _events(log_dir, kind: str, name: str) -> list[str]:
    """The pids that logged `kind` (built / closed) for variant `name`."""
    return sorted(p.name.split("-")[2] for p in log_dir.iterdir() if p.name.startswith(f"{kind}-{name}-"))


def test_one_pool_serves_every_pass_and_loads_a_variant_once_per_actor(ray_cluster, tmp_path):
    """Five passes over three variants on one pool: 2 actor starts in all; a variant mapped twice is built once per
    actor; a third variant evicts the least recently used one (closed), which is built again when it comes back."""
    from edgezoo.distributed import ActorPool

    items = list(range(12))
    with ray_session(parse_ray_target(ray_cluster.address)):
        with ActorPool(2) as pool:
            outs = {}
            for name, offset in (("a", 0), ("a", 0), ("b", 100), ("c", 200), ("a", 0)):
                stats = PoolStats()
                outs.setdefault(name, []).append(pool.map(name, functools.partial(LoggedModel, str(tmp_path), name,
                                                                                  offset), items, shard_size=2,
                                                          progress=False, stats=stats))
                assert stats.actors == 2 and stats.nodes == 2
            assert pool.starts == 2 and pool.died == 0
    for name, offset in (("a", 0), ("b", 100), ("c", 200)):
        assert all([v for v, _ in out] == [x + offset for x in items] for out in outs[name])
    pids = {pid for out in outs.values() for run in out for _, pid in run}
    assert len(pids) == 2  # the same two processes ran every pass
    # "a": built on both actors for passes 1-2 (not again for pass 2), evicted by "c" (2 variants per actor), built
    # again for pass 5; "b" and "c" once per actor.
    assert len(_events(tmp_path, "built", "a")) == 4 and len(set(_events(tmp_path, "built", "a"))) == 2
    assert len(_events(tmp_path, "built", "b")) == 2 and len(_events(tmp_path, "built", "c")) == 2
    assert len(_events(tmp_path, "closed", "a")) == 2 and len(_events(tmp_path, "closed", "b")) == 2


def test_an_actor_killed_in_one_pass_is_replaced_for_the_next(ray_cluster, tmp_path):
    """The replacement started in the first pass (which may end before it is up) serves the next pass."""
    import ray

    from edgezoo.distributed import ActorPool

    with ray_session(parse_ray_target(ray_cluster.address)):
        with ActorPool(2) as pool:
            first = pool.map("square", functools.partial(square_factory, str(tmp_path), 7), list(range(20)),
                             shard_size=2, progress=False)
            ray.wait(list(pool.pending), num_returns=len(pool.pending), timeout=120)  # the replacement is up
            stats = PoolStats()
            second = pool.map("plus", functools.partial(LoggedModel, str(tmp_path), "p", 1), list(range(20)),
                              shard_size=2, progress=False, stats=stats)
            assert pool.starts == 3 and pool.died == 1  # the two actors, and one replacement
    assert first == [x * x for x in range(20)] and [v for v, _ in second] == [x + 1 for x in range(20)]
    assert stats.actors == 2 and len({pid for _, pid in second}) == 2  # the next pass has its two actors again


def test_stored_shards_map_again_without_sending_the_items(ray_cluster):
    from edgezoo.distributed import ActorPool

    with ray_session(parse_ray_target(ray_cluster.address)):
        with ActorPool(2) as pool:
            stored = pool.shards(list(range(9)), shard_size=4)
            assert (stored.count, stored.size, len(stored.refs)) == (9, 4, 3)
            first = pool.map("x", functools.partial(LoggedModel, "/tmp", "s", 0), stored, progress=False)
            again = pool.map("y", functools.partial(LoggedModel, "/tmp", "t", 5), stored, progress=False)
    assert [v for v, _ in first] == list(range(9)) and [v for v, _ in again] == [x + 5 for x in range(9)]
