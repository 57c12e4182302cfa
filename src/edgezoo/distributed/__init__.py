"""Work over Ray actors, for any per-item function. Nothing here imports Ray until a function is called.

    map_in_order(factory, items, actors)   any per-image function over a dataset on Ray, results in order
    ray_session(parse_ray_target(value))   `auto` (a private local Ray) or HOST:PORT of a running cluster

Evaluation's use of it (`eval --ray`, `quantize --ray`) lives with evaluation (edgezoo.evaluation.on_ray).
"""

from edgezoo.distributed.cluster import (ClusterError, RayTarget, check_reachable, check_ray_target, parse_ray_target,
                                        ray_session, require_ray)
from edgezoo.distributed.pool import PoolStats, map_in_order

__all__ = ["ClusterError", "PoolStats", "RayTarget", "check_reachable", "check_ray_target", "map_in_order",
           "parse_ray_target", "ray_session", "require_ray"]
