"""edgezoo on a Ray cluster. Nothing here imports Ray until a function is called.

    ray_runner(target, actors=None)        `eval --ray`: a drop-in for engine.run_group on one pool of Ray actors
    run_on_ray(subjects, samples, pool)    a group of subjects over samples on a pool's actors -> [EngineRun]
    ray_predictor(target, actors=None)     `quantize --ray`: predict(subject, [(idx, tensor)]) on one pool of actors
    ActorPool(actors).map(key, factory, items)   actors started once, any per-image function per pass, in order
    map_in_order(factory, items, actors)   one map on a pool of its own
    ray_session(parse_ray_target(value))   `auto` (a private local Ray) or HOST:PORT of a running cluster
"""

from edgezoo.distributed.cluster import (ClusterError, RayTarget, check_reachable, check_ray_target, parse_ray_target,
                                        ray_session, require_ray)
from edgezoo.distributed.eval_on_ray import ray_predictor, ray_runner, run_on_ray
from edgezoo.distributed.pool import ActorPool, PoolStats, Shards, map_in_order

__all__ = ["ActorPool", "ClusterError", "PoolStats", "RayTarget", "Shards", "check_reachable", "check_ray_target",
           "map_in_order", "parse_ray_target", "ray_predictor", "ray_runner", "ray_session", "require_ray",
           "run_on_ray"]
