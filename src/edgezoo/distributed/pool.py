"""Map a per-item function over a list on a pool of Ray actors, results back in the list's order.

    map_in_order(factory, items, actors=N) -> [factory()(item) for item in items]

`factory` is pickled to every actor and called there once (load a model once per actor); the function it returns
is applied to the items of each shard the actor is given. Shards are small (a few per actor) so progress is smooth
and a lost shard is cheap to redo. Each actor has at most two shards in flight, so it never waits on the driver.

Faults: when an actor dies (its process killed, its node lost), the shards it held go back to the queue and are run
by another actor; a replacement actor is started, up to `replacements` times. A shard's result is kept once, by
shard number, so nothing is lost or counted twice. An exception raised by the function itself (a bad image, say)
is not a fault: it is raised here, unwrapped from Ray's envelope, as the local run would raise it.

Used by `edgezoo eval --ray` (distributed.eval_on_ray); meant for calibration and sensitivity passes too (any
per-image function whose results must come back in dataset order).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgezoo.core.errors import EdgezooError
from edgezoo.core.progress import CountBar
from edgezoo.distributed.cluster import ClusterError

IN_FLIGHT = 2  # shards per actor: one running, one queued behind it
SHARDS_PER_ACTOR = 4  # the default shard size aims at this many shards per actor
MAX_SHARD = 64
START_TIMEOUT_S = 300.0  # an actor that is not placed and loaded by then (no free CPU, a slow model) is an error


@dataclass
class PoolStats:
    """What happened on the cluster: actors used, deaths survived, shard size, and where shards ran."""

    actors: int = 0
    died: int = 0
    retried_shards: int = 0
    shard_size: int = 0
    load_s: float = 0.0  # starting the actors and building their functions (loading the models)
    hosts: dict[str, int] = field(default_factory=dict)  # "node id:pid" -> shards run

    @property
    def nodes(self) -> int:
        return len({where.rsplit(":", 1)[0] for where in self.hosts})


def shard_size_for(count: int, actors: int) -> int:
    return max(1, min(MAX_SHARD, math.ceil(count / max(1, actors * SHARDS_PER_ACTOR))))


class _Worker:
    """The actor body: the function is built on first use, in the actor's process."""

    def __init__(self, factory: Callable[[], Callable[[Any], Any]]) -> None:
        self._factory = factory
        self._fn: Callable[[Any], Any] | None = None

    def load(self) -> str:
        """Build the function; say where this actor runs ("node id:pid")."""
        import ray

        self._fn = self._factory()
        return f"{ray.get_runtime_context().get_node_id()}:{os.getpid()}"

    def run(self, shard: int, items: list[Any]) -> tuple[int, list[Any]]:
        assert self._fn is not None
        return shard, [self._fn(item) for item in items]


def _reason(exc: BaseException) -> str:
    """The line of Ray's multi-line death report that says why ("ModuleNotFoundError: ..."), else its first."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith("Error") and ":" in line]
    return (errors or lines or [type(exc).__name__])[-1 if errors else 0][:300]


def _unwrap(exc: BaseException) -> BaseException:
    """The exception the function raised, out of Ray's RayTaskError envelope (an EdgezooError stays one line)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class _Pool:
    def __init__(self, factory: Callable, actors: int, replacements: int, start_timeout: float,
                 stats: PoolStats) -> None:
        import ray

        self.ray = ray
        self.remote = ray.remote(num_cpus=1, max_restarts=0)(_Worker)
        self.factory_ref = ray.put(factory)  # pickled once, shared by every actor
        self.replacements_left = replacements
        self.start_timeout = start_timeout
        self.live: dict[int, Any] = {}  # actor number -> handle
        self.where: dict[int, str] = {}
        self.next_id = 0
        self.stats = stats
        self.last_death = ""
        self.handles: list[Any] = []  # every actor started, to end them all (replacements still loading too)
        self._start([self._spawn() for _ in range(actors)])

    def _spawn(self) -> tuple[int, Any]:
        handle = self.remote.remote(self.factory_ref)
        self.handles.append(handle)
        number, self.next_id = self.next_id, self.next_id + 1
        return number, handle

    def _start(self, spawned: list[tuple[int, Any]]) -> None:
        """Wait (bounded) until the first actors have built their function; a load error is raised as it is.
        Actors not placed in time (a busy cluster) are dropped: the run goes on with the others."""
        refs = [handle.load.remote() for _, handle in spawned]
        try:
            _, waiting = self.ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
            if len(waiting) == len(refs):
                raise ClusterError(f"no Ray actor started within {self.start_timeout:g} s (no free CPU on the "
                                   f"cluster: another run holding it?)",
                                   hint="use fewer actors (--ray-actors) or add nodes")
            for (number, handle), ref in zip(spawned, refs):
                if ref in waiting:
                    self.ray.kill(handle)
                else:
                    self.loaded(number, handle, ref)
            if not self.live:
                raise ClusterError(f"every Ray actor died while loading ({self.last_death})",
                                   hint="see the Ray logs of the nodes")
        except BaseException:
            for _, handle in spawned:
                self.ray.kill(handle)
            raise

    def loaded(self, number: int, handle: Any, ref: Any) -> None:
        """An actor's load finished: it joins the live ones, or counts as dead; its function's error is raised."""
        try:
            self.where[number] = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self.stats.died += 1
            self.last_death = _reason(exc)
            return
        except self.ray.exceptions.RayTaskError as exc:
            raise _unwrap(exc) from None
        self.live[number] = handle
        self.stats.actors += 1

    def replacement(self) -> tuple[Any, int, Any] | None:
        """A new actor started in the background: (its load ref, number, handle), or None when none are left."""
        if self.replacements_left <= 0:
            return None
        self.replacements_left -= 1
        number, handle = self._spawn()
        return handle.load.remote(), number, handle

    def close(self) -> None:
        for handle in self.handles:
            self.ray.kill(handle)  # no error for an actor already dead


def map_in_order(factory: Callable[[], Callable[[Any], Any]], items: Sequence[Any], *, actors: int,
                 shard_size: int | None = None, replacements: int | None = None, label: str = "ray",
                 unit: str = "images", progress: bool = True, start_timeout: float = START_TIMEOUT_S,
                 stats: PoolStats | None = None) -> list[Any]:
    """[fn(item) for item in items] computed by `actors` Ray actors (fn = factory(), built once per actor).

    Needs an initialised Ray (distributed.cluster.ray_session). `replacements` (default: `actors`) bounds how many
    dead actors are replaced; progress (items done / total, items/s) goes to stderr."""
    import ray

    if actors < 1:
        raise EdgezooError(f"actors must be >= 1, got {actors}")
    items = list(items)
    if not items:
        return []
    size = shard_size or shard_size_for(len(items), actors)
    shards = [items[i:i + size] for i in range(0, len(items), size)]
    actors = min(actors, len(shards))  # an actor without a shard would only load its model
    stats = stats if stats is not None else PoolStats()
    stats.shard_size = size
    results: list[list[Any] | None] = [None] * len(shards)
    queue = deque(range(len(shards)))
    pool: _Pool | None = None
    bar: CountBar | None = None
    try:
        t0 = time.perf_counter()
        pool = _Pool(factory, actors, actors if replacements is None else replacements, start_timeout, stats)
        stats.load_s = time.perf_counter() - t0
        bar = CountBar(label, len(items), unit=unit, enabled=progress)  # its rate starts once the actors are up
        in_flight: dict[Any, tuple[int, int]] = {}  # ref -> (actor number, shard)
        starting: dict[Any, tuple[int, Any]] = {}  # replacement's load ref -> (actor number, handle)

        def feed() -> None:
            for number, handle in list(pool.live.items()):
                while queue and sum(1 for a, _ in in_flight.values() if a == number) < IN_FLIGHT:
                    shard = queue.popleft()
                    in_flight[handle.run.remote(shard, shards[shard])] = (number, shard)

        feed()
        while in_flight or (starting and queue):  # a replacement is waited for only while there is work
            # With no live actor, only a replacement can make progress: bound that wait.
            timeout = None if pool.live else start_timeout
            done, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=timeout)
            if not done:
                raise ClusterError(f"no Ray actor left and none restarted within {start_timeout:g} s "
                                   f"({stats.died} died: {pool.last_death})",
                                   hint="check the nodes; nothing was written")
            (ref,) = done
            if ref in starting:
                pool.loaded(*starting.pop(ref), ref)
            else:
                number, shard = in_flight.pop(ref)
                try:
                    _, values = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    pool.last_death = _reason(exc)
                    _lost(pool, number, shard, in_flight, queue, starting)
                except ray.exceptions.RayTaskError as exc:
                    raise _unwrap(exc) from None
                else:
                    if results[shard] is None:  # a shard is kept once, whoever ran it
                        results[shard] = values
                        bar.update(len(values))
                        host = pool.where.get(number, "?")
                        stats.hosts[host] = stats.hosts.get(host, 0) + 1
            if not pool.live and not starting and queue:
                raise ClusterError(f"every Ray actor died ({stats.died}: {pool.last_death})",
                                   hint="check the nodes' memory and logs; nothing was written")
            feed()
    except BaseException:
        if bar is not None:
            bar.close(failed=True)
        raise
    finally:
        if pool is not None:
            pool.close()
    bar.close()
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:  # cannot happen unless the bookkeeping above is wrong: never return a short list
        raise ClusterError(f"shards {missing} have no result")
    return [value for shard in results for value in shard]


def _lost(pool: _Pool, number: int, shard: int, in_flight: dict, queue: deque, starting: dict) -> None:
    """An actor died: its shards go back to the front of the queue (in order) for the other actors, and a
    replacement starts in the background."""
    requeue = [shard]
    if pool.live.pop(number, None) is not None:
        pool.stats.died += 1
        for ref, (other, other_shard) in list(in_flight.items()):
            if other == number:
                del in_flight[ref]
                requeue.append(other_shard)
        started = pool.replacement()
        if started is not None:
            ref, new_number, handle = started
            starting[ref] = (new_number, handle)
    pool.stats.retried_shards += len(requeue)
    queue.extendleft(sorted(requeue, reverse=True))
