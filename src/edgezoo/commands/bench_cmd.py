"""`edgezoo bench`: one model or bundle under the real MLPerf LoadGen (SingleStream or Offline)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edgezoo.commands import options
from edgezoo.commands.eval_cmd import add_original_options, subjects_of
from edgezoo.core.errors import EdgezooError

# Short enough for a laptop; MLPerf's minimums (600000 ms, and its query counts) are reachable by the options.
DEFAULT_MIN_DURATION_MS = 2000
DEFAULT_MIN_QUERY_COUNT = 32
# One hour: MLPerf's 600000 ms minimum fits; a typo of three extra zeros does not run for a day.
MAX_DURATION_MS = 3_600_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="latency / throughput (or accuracy) under the real MLPerf LoadGen",
        description="Runs TARGET (a model id: its original; or a bundle folder) as LoadGen's system under test "
                    "with the dataset as its sample library. Performance mode prints LoadGen's figures (90th "
                    "percentile latency for SingleStream, samples/s for Offline) and 'Result is : VALID|INVALID' "
                    "from mlperf_log_summary.txt; --accuracy runs AccuracyOnly and scores LoadGen's "
                    "mlperf_log_accuracy.json as 'edgezoo eval' does. LoadGen's logs stay in OUT. An ONNX SSD "
                    "bundle is benchmarked through its ONNX tail (use --meta-arch for the prototxt's decoding).")
    p.add_argument("target", metavar="TARGET", help="model id (original) or bundle folder")
    p.add_argument("--dataset", type=Path, required=True, help="ImageNet or COCO folder (as for 'edgezoo eval')")
    p.add_argument("--scenario", required=True, choices=("SingleStream", "Offline"), help="LoadGen scenario")
    p.add_argument("--accuracy", action="store_true", help="AccuracyOnly mode, then score the accuracy log")
    p.add_argument("--min-duration-ms", metavar="N", default=str(DEFAULT_MIN_DURATION_MS),
                   help=f"LoadGen min_duration_ms (default {DEFAULT_MIN_DURATION_MS}; MLPerf: 600000)")
    p.add_argument("--min-query-count", metavar="N", default=str(DEFAULT_MIN_QUERY_COUNT),
                   help=f"LoadGen min_query_count (default {DEFAULT_MIN_QUERY_COUNT}; MLPerf SingleStream: 1024)")
    p.add_argument("--count", metavar="N", help="the dataset's first N images form the sample library")
    p.add_argument("--meta-arch", action="store_true",
                   help="ONNX SSD bundle: benchmark the meta_arch.prototxt decoding instead of the ONNX tail")
    add_original_options(p)
    options.add_out(p, Path("benchs"), "output folder; logs go to OUT/<model>/<what>/<scenario>[-accuracy]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgezoo.datasets import open_dataset
    from edgezoo.evaluation.loadgen_sut import Scenario, run_loadgen
    from edgezoo.evaluation.subjects import Runtime
    from edgezoo.core.report import dump_json

    duration = options.positive_int(args.min_duration_ms, "--min-duration-ms", maximum=MAX_DURATION_MS)
    queries = options.positive_int(args.min_query_count, "--min-query-count", maximum=10_000_000)
    count = options.positive_int(args.count, "--count")
    dataset = open_dataset(args.dataset, count=count)
    subjects = subjects_of([args.target], args, dataset)
    chosen = [s for s in subjects if (s.runtime is Runtime.META_ARCH) == args.meta_arch]
    if not chosen:
        raise EdgezooError(f"{args.target}: --meta-arch needs an ONNX SSD bundle with meta_arch.prototxt"
                           if args.meta_arch else f"{args.target}: has no ONNX tail, only its meta_arch.prototxt",
                           hint="drop --meta-arch" if args.meta_arch else "add --meta-arch")
    subject = chosen[0]
    scenario = Scenario(args.scenario)
    out = args.out / subject.card.id / subject.slug / (scenario.value + ("-accuracy" if args.accuracy else ""))
    result = run_loadgen(subject, dataset, out, scenario=scenario, accuracy=args.accuracy,
                         min_duration_ms=duration, min_query_count=queries)
    if args.json:
        print(dump_json(result))
        return 0
    print(f"{subject.what} ({subject.runtime.value}), LoadGen {scenario.value} {result.mode}, "
          f"{result.count} samples; logs in {out}")
    for line in result.summary_lines:
        print(f"  {line}")
    if result.accuracy is not None:
        print(f"  {result.metric} = {result.accuracy:.3f}% (LoadGen's mlperf_log_accuracy.json, scored as eval)")
    return 0
