"""edgezoo on a Ray cluster (issue 12). Nothing here imports Ray until a function is called.

    ray_runner(target, actors=None)        `eval --ray`: a drop-in for engine.run_subject on Ray actors
    run_on_ray(subject, samples, actors)   one subject over samples on the connected Ray -> EngineRun
    ray_predictor(target, actors=None)     `quantize --ray`: predict(subject, [(idx, tensor)]) on Ray actors
    map_in_order(factory, items, actors)   any per-image function over a dataset on Ray, results in order
    ray_session(parse_ray_target(value))   `auto` (a private local Ray) or HOST:PORT of a running cluster
"""

from edgezoo.distributed.cluster import (ClusterError, RayTarget, check_reachable, check_ray_target, parse_ray_target,
                                        ray_session, require_ray)
from edgezoo.distributed.eval_on_ray import ray_predictor, ray_runner, run_on_ray
from edgezoo.distributed.pool import PoolStats, map_in_order

__all__ = ["ClusterError", "PoolStats", "RayTarget", "check_reachable", "check_ray_target", "map_in_order",
           "parse_ray_target", "ray_predictor", "ray_runner", "ray_session", "require_ray", "run_on_ray"]
