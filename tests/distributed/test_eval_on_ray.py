"""`eval --ray` on the real two-node cluster: the same files as the local run, byte for byte, also when a worker
is killed mid-run; reduced stand-ins and a few images."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from edgezoo.datasets import open_dataset
from edgezoo.evaluation.api import evaluate
from edgezoo.evaluation.subjects import bundle_subjects
from tests.evaluation.eval_helpers import bundle, labelled_dataset, original

# accuracy.json fields that may differ between two runs of the same evaluation, and why: the timing of that run,
# and the folder it was written to (the two runs write to two folders).
RUN_FIELDS = {"images_per_s", "seconds", "out"}


def assert_same_results(local: Path, on_ray: Path) -> None:
    """Every file the local run wrote, with the same bytes in the Ray run; accuracy.json equal but RUN_FIELDS."""
    files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(on_ray) for p in on_ray.rglob("*") if p.is_file())
    assert any(f.name == "mlperf_log_accuracy.json" for f in files)
    for rel in files:
        a, b = (local / rel).read_bytes(), (on_ray / rel).read_bytes()
        if rel.name == "accuracy.json":
            ja, jb = json.loads(a), json.loads(b)
            assert {k for k in ja if ja[k] != jb[k]} <= RUN_FIELDS, rel
            assert ja["out"] == str(local / rel.parent) and jb["out"] == str(on_ray / rel.parent)
        else:
            assert a == b, f"{rel} differs"


def test_imagenet_on_two_nodes_equals_local(ray_cluster, tmp_path, capfd):
    dataset = open_dataset(labelled_dataset("imagenet", "mobilenet-v1", 12))
    subjects = [original("mobilenet-v1"), *bundle_subjects(bundle("mobilenet-v1", "tflite"))]
    local = evaluate(subjects, dataset, tmp_path / "local", progress=False)
    capfd.readouterr()
    on_ray = evaluate(subjects, dataset, tmp_path / "ray", ray=ray_cluster.address)
    err = capfd.readouterr().err
    assert [r.value for r in on_ray] == [r.value for r in local]
    assert_same_results(tmp_path / "local", tmp_path / "ray")
    # Progress across the cluster on stderr: the cluster, images done / total with a rate, both nodes used.
    assert "2 node(s), 2 CPU(s), 2 actor(s)" in err
    assert "done: 12/12 images" in err and "/s)" in err
    assert err.count("ran on 2 node(s), 2 actor process(es)") == 2
    assert "Ray: 2 actor(s) started for this run (0 died)" in err  # one pool for both subjects


def test_coco_detections_on_two_nodes_equal_local(ray_cluster, tmp_path, capfd):
    dataset = open_dataset(labelled_dataset("coco", "ssd-mobilenet-v1", 8))
    subjects = bundle_subjects(bundle("ssd-mobilenet-v1", "tflite"))
    evaluate(subjects, dataset, tmp_path / "local", progress=False)
    capfd.readouterr()
    # More actors than the cluster's 2 CPUs: capped and said, rather than waiting for CPUs that never come.
    evaluate(subjects, dataset, tmp_path / "ray", ray=ray_cluster.address, ray_actors=5)
    assert "--ray-actors 5, but the cluster has 2 CPU(s): using 2" in capfd.readouterr().err
    assert_same_results(tmp_path / "local", tmp_path / "ray")
    assert (tmp_path / "ray" / "ssd-mobilenet-v1" / "tflite" / "coco-results.json").stat().st_size > 2


def _kill_first_busy_actor(cluster, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first of this cluster's actor processes seen running a shard (its title is ray::Worker.run)."""
    while not stop.is_set() and not killed:
        for pid in cluster.pids():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::Worker.run"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.005)


def test_worker_killed_mid_eval_gives_the_same_files(ray_cluster, tmp_path, capfd):
    dataset = open_dataset(labelled_dataset("imagenet", "mobilenet-v1", 48))
    subjects = [original("mobilenet-v1")]  # TensorFlow: slow enough per shard for the kill to land mid-run
    evaluate(subjects, dataset, tmp_path / "local", progress=False)
    capfd.readouterr()
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_busy_actor, args=(ray_cluster, killed, stop), daemon=True)
    killer.start()
    try:
        evaluate(subjects, dataset, tmp_path / "ray", ray=ray_cluster.address)
    finally:
        stop.set()
        killer.join()
    assert killed, "no actor was seen running a shard"
    err = capfd.readouterr().err
    assert "1 actor(s) died" in err and "Ray: 3 actor(s) started for this run (1 died)" in err
    assert_same_results(tmp_path / "local", tmp_path / "ray")
    log = json.loads((tmp_path / "ray" / "mobilenet-v1" / "original" / "mlperf_log_accuracy.json").read_text())
    assert [e["qsl_idx"] for e in log] == list(range(48))  # nothing lost, nothing twice


def test_skipped_images_are_the_local_ones(ray_cluster, tmp_path):
    """A corrupt image is skipped with the same reason, and the records keep their qsl_idx, as locally."""
    root = tmp_path / "data"
    shutil.copytree(labelled_dataset("imagenet", "mobilenet-v1", 12), root)
    victim = sorted((root).rglob("*.JPEG"))[4]
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])  # truncated JPEG
    dataset = open_dataset(root, skip_bad=True)
    subjects = bundle_subjects(bundle("mobilenet-v1", "tflite"))
    local = evaluate(subjects, dataset, tmp_path / "local", skip_bad=True, progress=False)
    on_ray = evaluate(subjects, dataset, tmp_path / "ray", skip_bad=True, ray=ray_cluster.address, progress=False)
    assert local[0].skipped == on_ray[0].skipped == 1 and on_ray[0].skipped_files == local[0].skipped_files
    assert_same_results(tmp_path / "local", tmp_path / "ray")


def test_actors_larger_than_every_node_are_refused(ray_cluster, tmp_path):
    """--threads 2 asks actors of 2 CPUs; the two nodes have one each (2 CPUs in all, but never on one node)."""
    import pytest

    from edgezoo.distributed import ClusterError

    dataset = open_dataset(labelled_dataset("imagenet", "mobilenet-v1", 4))
    with pytest.raises(ClusterError, match=r"--threads 2: each actor needs 2 CPUs on one node, and no node of the "
                                           r"cluster has that many \(at most 1\)"):
        evaluate(bundle_subjects(bundle("mobilenet-v1", "tflite")), dataset, tmp_path / "o",
                 ray=ray_cluster.address, ray_threads=2, progress=False)
    assert not (tmp_path / "o").exists()
