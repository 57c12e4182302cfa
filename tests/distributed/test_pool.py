"""map_in_order on the real two-node cluster: order, both nodes used, a worker killed mid-run, errors unwrapped."""

from __future__ import annotations

import functools

import pytest

from edgezoo.core.errors import DatasetError
from edgezoo.distributed import PoolStats, map_in_order, parse_ray_target, ray_session
# Imported under their package name: the actors unpickle them by reference (tests.distributed.*).
from tests.distributed.pool_functions import CpuHolder, fails_on_three, square_factory


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
