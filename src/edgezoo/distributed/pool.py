"""A pool of Ray actors started once for a run, mapping per-item functions over lists, results in the lists' order.

    with ActorPool(actors=N) as pool:                 # the actors start here (in the background)
        pool.map(key, factory, items)                 # -> [factory()(item) for item in items]
        pool.map(other_key, other_factory, items)     # the same actors, another model variant

`factory` is pickled to the actors and called there once per actor and `key` (load a model variant once per actor,
not once per pass); an actor keeps the last VARIANTS_PER_ACTOR functions it built (a function with a close() is
closed when dropped), so a variant used again is not loaded again. `map_in_order(factory, items, actors=N)` is one
map on a pool of its own.

Items are cut into small shards (a few per actor) so progress is smooth and a lost shard is cheap to redo; each
actor has at most two shards in flight, so it never waits on the driver. `pool.shards(items)` stores the shards in
Ray's object store once, for items every pass maps again (quantize's preprocessed images).

Faults: when an actor dies (its process killed, its node lost), the shards it held go back to the queue and are run
by another actor; a replacement actor is started (up to `replacements` per map), which builds the variant on its
first shard. A shard's result is kept once, by shard number, so nothing is lost or counted twice. An exception
raised by the function itself (a bad image, say) is not a fault: it is raised here, unwrapped from Ray's envelope,
as the local run would raise it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgezoo.core.errors import EdgezooError
from edgezoo.core.progress import CountBar
from edgezoo.distributed.cluster import ClusterError
from edgezoo.distributed.worker import Worker

IN_FLIGHT = 2  # shards per actor: one running, one queued behind it
SHARDS_PER_ACTOR = 4  # the default shard size aims at this many shards per actor
MAX_SHARD = 64
START_TIMEOUT_S = 300.0  # an actor that is not placed and loaded by then (no free CPU, a slow model) is an error
VARIANTS_PER_ACTOR = 2  # model variants an actor keeps loaded (float + the variant being measured)


@dataclass
class PoolStats:
    """What happened in one map: actors used, deaths survived, shard size, and where shards ran."""

    actors: int = 0
    died: int = 0
    retried_shards: int = 0
    shard_size: int = 0
    load_s: float = 0.0  # waiting for the actors to start and to build their function (load the model)
    hosts: dict[str, int] = field(default_factory=dict)  # "node id:pid" -> shards run

    @property
    def nodes(self) -> int:
        return len({where.rsplit(":", 1)[0] for where in self.hosts})


def shard_size_for(count: int, actors: int) -> int:
    return max(1, min(MAX_SHARD, math.ceil(count / max(1, actors * SHARDS_PER_ACTOR))))


@dataclass
class Shards:
    """Items cut into shards and stored in Ray's object store once (pool.shards), to be mapped many times."""

    count: int
    size: int
    refs: list[Any]


class ActorPool:
    """`actors` Ray actors of `cpus` CPUs each, started once and reused by every map until close().

    Needs an initialised Ray (distributed.cluster.ray_session). `preload`: modules the actors import while they
    start (the runtime a run needs), so that the first map does not wait for them. Starting is asynchronous: the
    driver goes on (calibrating, preprocessing) while the actors come up; the first map waits for them, at most
    `start_timeout` s, and goes on with those that started (a busy cluster)."""

    def __init__(self, actors: int, *, cpus: int = 1, preload: Sequence[str] = (),
                 start_timeout: float = START_TIMEOUT_S, capacity: int = VARIANTS_PER_ACTOR) -> None:
        import ray

        if actors < 1:
            raise EdgezooError(f"actors must be >= 1, got {actors}")
        self.ray = ray
        self.cpus = cpus
        self.size = actors
        self.start_timeout = start_timeout
        self._remote = ray.remote(num_cpus=cpus, max_restarts=0)(Worker)
        self._args = (tuple(preload), capacity)
        self.live: dict[int, Any] = {}  # actor number -> handle
        self.where: dict[int, str] = {}  # actor number -> "node id:pid"
        self.handles: list[Any] = []  # every actor started (to end them all, replacements still starting too)
        self.starts = 0  # actors started over the pool's life: `actors`, plus the replacements of dead ones
        self.died = 0
        self.last_death = ""
        self._starting: list[tuple[int, Any, Any]] | None = [self.spawn() for _ in range(actors)]
        self.pending: dict[Any, tuple[int, Any]] = {}  # replacements still starting: ready ref -> (number, handle)
        self._stored: list[Any] = []

    def __enter__(self) -> ActorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- actors -------------------------------------------------------------------------------------------------

    def spawn(self) -> tuple[int, Any, Any]:
        """(number, handle, ready ref) of a new actor, starting in the background."""
        handle = self._remote.remote(*self._args)
        self.handles.append(handle)
        number = self.starts
        self.starts += 1
        return number, handle, handle.ready.remote()

    def _started(self) -> None:
        """Wait (bounded) for the first actors; those not placed in time (a busy cluster) are dropped. Replacements
        started during an earlier map join when they are ready (without waiting for them)."""
        if self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
            for ref in ready:
                self.joined(*self.pending.pop(ref), ref)
        if self._starting is None:
            return
        spawned, self._starting = self._starting, None
        refs = [ref for *_, ref in spawned]
        _, waiting = self.ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        if len(waiting) == len(refs):
            raise ClusterError(f"no Ray actor started within {self.start_timeout:g} s (no free CPU on the "
                               f"cluster: another run holding it?)",
                               hint="use fewer actors (--ray-actors) or add nodes")
        for number, handle, ref in spawned:
            if ref in waiting:
                self.ray.kill(handle)
            else:
                self.joined(number, handle, ref)
        if not self.live:
            raise ClusterError(f"every Ray actor died while starting ({self.last_death})",
                               hint="see the Ray logs of the nodes")

    def joined(self, number: int, handle: Any, ref: Any) -> None:
        """An actor's start finished: it joins the live ones, or counts as dead; its own error is raised."""
        try:
            self.where[number] = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self.died += 1
            self.last_death = reason(exc)
            return
        except self.ray.exceptions.RayTaskError as exc:
            raise unwrap(exc) from None
        self.live[number] = handle

    def lost(self, number: int, exc: BaseException) -> bool:
        """An actor died: True when it was live (it is then counted once)."""
        self.last_death = reason(exc)
        if self.live.pop(number, None) is None:
            return False
        self.died += 1
        return True

    def close(self) -> None:
        for handle in self.handles:
            self.ray.kill(handle)  # no error for an actor already dead
        self.handles.clear()
        self.live.clear()
        self._stored.clear()

    # -- maps ---------------------------------------------------------------------------------------------------

    def shards(self, items: Sequence[Any], shard_size: int | None = None) -> Shards:
        """`items` cut into shards for this pool and put in Ray's object store once (freed by close())."""
        items = list(items)
        size = shard_size or shard_size_for(len(items), self.size)
        refs = [self.ray.put(items[i:i + size]) for i in range(0, len(items), size)]
        self._stored += refs
        return Shards(len(items), size, refs)

    def map(self, key: Hashable, factory: Callable[[], Callable[[Any], Any]], items: Sequence[Any] | Shards, *,
            shard_size: int | None = None, replacements: int | None = None, label: str = "ray",
            unit: str = "images", progress: bool = True, stats: PoolStats | None = None) -> list[Any]:
        """[fn(item) for item in items], fn = factory() built once per actor for `key` (kept for later maps).

        `replacements` (default: the pool's size) bounds how many dead actors this map replaces; progress (items
        done / total, items/s) goes to stderr."""
        stats = stats if stats is not None else PoolStats()
        if isinstance(items, Shards):
            count, stats.shard_size, shards = items.count, items.size, list(items.refs)
        else:
            items = list(items)
            count = len(items)
            stats.shard_size = shard_size or shard_size_for(count, self.size)
            shards = [items[i:i + stats.shard_size] for i in range(0, count, stats.shard_size)]
        if not count:
            return []
        t0 = time.perf_counter()
        self._started()
        run = _Map(self, key, self.ray.put(factory), shards, stats,
                   self.size if replacements is None else replacements)
        run.load()
        stats.load_s = time.perf_counter() - t0
        bar = CountBar(label, count, unit=unit, enabled=progress)  # its rate starts once the variant is loaded
        try:
            results = run.run(bar)
        except BaseException:
            bar.close(failed=True)
            raise
        bar.close()
        return [value for shard in results for value in shard]


class _Map:
    """One map's bookkeeping: which actor holds which shard, what is done, who replaces the dead."""

    def __init__(self, pool: ActorPool, key: Hashable, factory_ref: Any, shards: list[Any], stats: PoolStats,
                 replacements: int) -> None:
        self.pool, self.ray, self.key, self.factory_ref = pool, pool.ray, key, factory_ref
        self.shards, self.stats, self.replacements_left = shards, stats, replacements
        self.results: list[list[Any] | None] = [None] * len(shards)
        self.queue = deque(range(len(shards)))
        self.in_flight: dict[Any, tuple[int, int]] = {}  # ref -> (actor number, shard)
        self.starting = pool.pending  # replacements still starting (they outlive this map if it ends first)
        self.active: dict[int, Any] = {}  # the actors of this map

    def load(self) -> None:
        """The variant built on the actors that will get shards (in parallel); a build error is raised as it is."""
        chosen = list(self.pool.live.items())[:len(self.shards)]  # an actor without a shard would only load
        if not chosen:
            raise ClusterError(f"no Ray actor left in this run ({self.pool.died} died: {self.pool.last_death})",
                               hint="check the nodes' memory and logs")
        loads = {handle.load.remote(self.key, self.factory_ref): (number, handle) for number, handle in chosen}
        done, waiting = self.ray.wait(list(loads), num_returns=len(loads), timeout=self.pool.start_timeout)
        if waiting:
            raise ClusterError(f"Ray actors did not load the model within {self.pool.start_timeout:g} s",
                               hint="check the nodes' load, or use fewer actors (--ray-actors)")
        for ref in done:
            number, handle = loads[ref]
            try:
                self.ray.get(ref)
            except self.ray.exceptions.RayActorError as exc:
                self._lost(number, exc)
                continue
            except self.ray.exceptions.RayTaskError as exc:
                raise unwrap(exc) from None
            self.active[number] = handle
        self.stats.actors = len(self.active)

    def run(self, bar: CountBar) -> list[list[Any]]:
        self._feed()
        timeout = self.pool.start_timeout
        while self.in_flight or (self.starting and self.queue):  # a replacement is waited for only while needed
            if not self.active and not self.starting:
                break
            # With no live actor, only a replacement can make progress: bound that wait.
            done, _ = self.ray.wait([*self.in_flight, *self.starting], num_returns=1,
                                    timeout=None if self.active else timeout)
            if not done:
                raise ClusterError(f"no Ray actor left and none restarted within {timeout:g} s "
                                   f"({self.stats.died} died: {self.pool.last_death})",
                                   hint="check the nodes; nothing was written")
            (ref,) = done
            if ref in self.starting:
                number, handle = self.starting.pop(ref)
                self.pool.joined(number, handle, ref)
                if number in self.pool.live:
                    self.active[number] = handle  # it builds the variant on its first shard
                    self.stats.actors += 1
                else:
                    self.stats.died += 1
            else:
                self._result(ref, bar)
            self._feed()
        if self.queue:
            raise ClusterError(f"every Ray actor died ({self.stats.died}: {self.pool.last_death})",
                               hint="check the nodes' memory and logs; nothing was written")
        missing = [i for i, r in enumerate(self.results) if r is None]
        if missing:  # cannot happen unless the bookkeeping above is wrong: never return a short list
            raise ClusterError(f"shards {missing} have no result")
        return self.results  # type: ignore[return-value]

    def _feed(self) -> None:
        for number, handle in list(self.active.items()):
            while self.queue and sum(1 for a, _ in self.in_flight.values() if a == number) < IN_FLIGHT:
                shard = self.queue.popleft()
                ref = handle.run.remote(self.key, self.factory_ref, shard, self.shards[shard])
                self.in_flight[ref] = (number, shard)

    def _result(self, ref: Any, bar: CountBar) -> None:
        number, shard = self.in_flight.pop(ref)
        try:
            _, values = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self._lost(number, exc, shard)
            return
        except self.ray.exceptions.RayTaskError as exc:
            raise unwrap(exc) from None
        if self.results[shard] is None:  # a shard is kept once, whoever ran it
            self.results[shard] = values
            bar.update(len(values))
            host = self.pool.where.get(number, "?")
            self.stats.hosts[host] = self.stats.hosts.get(host, 0) + 1

    def _lost(self, number: int, exc: BaseException, shard: int | None = None) -> None:
        """An actor died: its shards go back to the front of the queue (in order) for the other actors, and a
        replacement starts in the background."""
        requeue = [] if shard is None else [shard]
        self.active.pop(number, None)
        if self.pool.lost(number, exc):
            self.stats.died += 1
            for other_ref, (other, other_shard) in list(self.in_flight.items()):
                if other == number:
                    del self.in_flight[other_ref]
                    requeue.append(other_shard)
            if self.replacements_left > 0:
                self.replacements_left -= 1
                new_number, handle, ready = self.pool.spawn()
                self.starting[ready] = (new_number, handle)
        self.stats.retried_shards += len(requeue)
        self.queue.extendleft(sorted(requeue, reverse=True))


def reason(exc: BaseException) -> str:
    """The line of Ray's multi-line death report that says why ("ModuleNotFoundError: ..."), else its first."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith("Error") and ":" in line]
    return (errors or lines or [type(exc).__name__])[-1 if errors else 0][:300]


def unwrap(exc: BaseException) -> BaseException:
    """The exception the function raised, out of Ray's RayTaskError envelope (an EdgezooError stays one line)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def map_in_order(factory: Callable[[], Callable[[Any], Any]], items: Sequence[Any], *, actors: int,
                 shard_size: int | None = None, replacements: int | None = None, label: str = "ray",
                 unit: str = "images", progress: bool = True, start_timeout: float = START_TIMEOUT_S,
                 stats: PoolStats | None = None) -> list[Any]:
    """[fn(item) for item in items] computed by `actors` Ray actors of a pool of their own (fn = factory(), built
    once per actor); see ActorPool.map. Needs an initialised Ray."""
    if actors < 1:
        raise EdgezooError(f"actors must be >= 1, got {actors}")
    items = list(items)
    if not items:
        return []
    size = shard_size or shard_size_for(len(items), actors)
    actors = min(actors, math.ceil(len(items) / size))  # an actor without a shard would only load its model
    with ActorPool(actors, start_timeout=start_timeout) as pool:
        return pool.map("map_in_order", factory, items, shard_size=size, replacements=replacements, label=label,
                        unit=unit, progress=progress, stats=stats)
