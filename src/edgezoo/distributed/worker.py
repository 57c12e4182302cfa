"""The body of edgezoo's Ray actors (distributed.pool): model variants built once per actor, kept for later passes.

Imported by every actor process; it must stay light (Ray and the runtimes are imported on use)."""

from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any


class Worker:
    """One actor: builds `factory()` once per key and applies it to the items of the shards it is given."""

    def __init__(self, preload: Sequence[str], capacity: int) -> None:
        self._preload = tuple(preload)
        self._capacity = max(1, capacity)
        self._fns: OrderedDict[Hashable, Callable[[Any], Any]] = OrderedDict()

    def ready(self) -> str:
        """Import what the run needs while the driver prepares; say where this actor runs ("node id:pid")."""
        import ray

        for module in self._preload:
            importlib.import_module(module)
        return f"{ray.get_runtime_context().get_node_id()}:{os.getpid()}"

    def load(self, key: Hashable, factory: Callable[[], Callable[[Any], Any]]) -> None:
        self._function(key, factory)

    def run(self, key: Hashable, factory: Callable[[], Callable[[Any], Any]], shard: int,
            items: list[Any]) -> tuple[int, list[Any]]:
        fn = self._function(key, factory)  # built here when this actor replaces one that died
        return shard, [fn(item) for item in items]

    def _function(self, key: Hashable, factory: Callable[[], Callable[[Any], Any]]) -> Callable[[Any], Any]:
        if key in self._fns:
            self._fns.move_to_end(key)
            return self._fns[key]
        while len(self._fns) >= self._capacity:  # make room first: two full-size models need not coexist
            _, old = self._fns.popitem(last=False)
            close = getattr(old, "close", None)
            if callable(close):
                close()
        fn = self._fns[key] = factory()
        return fn
