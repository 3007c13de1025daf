"""Distributed analysis on a real ``distributed.LocalCluster`` or local Ray: scaling from 1 to 2 worker processes, and client bytes.

``python benchmarks/distributed_scaling.py [--layers 12] [--width 2048] [--shards 3] [--engines dask,ray] [--format msgpack]
[--workdir DIR]``
(or ``nox -s distributed -- bench``). Writes a sharded float32 safetensors checkpoint (or, with ``--format msgpack``,
the same matrices as one Flax msgpack train state, read by ww-jax), then times analyze():
serially in this process (today's route: the client reads every layer), then, for each engine, on clusters
of 1 and 2 worker processes, one task at a time and one BLAS thread each (workers read their own layers):
Dask's LocalCluster, or a local Ray of 1 and 2 CPUs through ``ww_core.pipeline.ray_cluster.RayExecutor``. Reports
the speedup 1→2 workers against the 1.8× target, the per-layer cost (the input of docs/distributed.md's
estimate), and the bytes of tensor data this, the client, process read through the toolkit, with
/proc/self/io's rchar and read_bytes, and the load average. Prints; never asserts (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import ww_core
from ww_core.platform.toolkit import TensorRef

SCALING_TARGET = 1.8
ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_checkpoint(folder: Path, layers: int, width: int, shards: int) -> int:
    """``layers`` float32 width² matrices (heavy-tailed, so fits are real) over ``shards`` files; returns the bytes written."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    per_shard = -(-layers // shards)
    for shard in range(shards):
        names = range(shard * per_shard, min(layers, (shard + 1) * per_shard))
        tensors = {f"model.layers.{i}.mlp.weight": (rng.standard_t(4, size=(width, width)) / width).astype(np.float32) for i in names}
        save_file(tensors, str(folder / f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"))
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def write_msgpack(folder: Path, layers: int, width: int) -> int:
    """The same matrices as ``write_checkpoint``'s, as one Flax msgpack train state (Dense kernels stored (in, out)); returns its bytes."""
    from flax import serialization

    import ww_jax.file_refs  # noqa: F401  # its references exist before ClientReads counts their reads

    rng = np.random.default_rng(0)
    params = {
        f"layers_{i}": {"mlp": {"kernel": (rng.standard_t(4, size=(width, width)) / width).astype(np.float32).T}} for i in range(layers)
    }
    path = folder / "state.msgpack"
    path.write_bytes(serialization.to_bytes({"params": params}))
    return path.stat().st_size


def first_file(source: Path) -> Path:
    """The checkpoint file a warm-up describes: the msgpack file itself, or the first shard."""
    return source if source.is_file() else sorted(source.glob("*.safetensors"))[0]


class ClientReads:
    """Bytes of tensor data read through the toolkit's references in this process, and /proc/self/io counters."""

    def __init__(self) -> None:
        self.tensor_bytes = 0
        for cls in TensorRef.__subclasses__():
            cls.read = self._counting(cls.read)  # type: ignore[method-assign]

    def _counting(self, real: Any) -> Any:
        def read(ref: Any) -> np.ndarray:
            array = real(ref)
            self.tensor_bytes += array.nbytes
            return array

        return read

    @staticmethod
    def proc_io() -> dict[str, int]:
        """rchar (bytes asked of read()) and read_bytes (bytes fetched from storage) of this process; {} off Linux."""
        try:
            lines = Path("/proc/self/io").read_text().splitlines()
        except OSError:
            return {}
        pairs = (line.split(":") for line in lines)
        return {key: int(value) for key, value in pairs if key in ("rchar", "read_bytes")}


def timed(label: str, run: Any, reads: ClientReads) -> tuple[float, Any]:
    before_bytes, before_io = reads.tensor_bytes, reads.proc_io()
    started = time.perf_counter()
    results = run()
    seconds = time.perf_counter() - started
    after_io = reads.proc_io()
    io = ", ".join(f"{key} {(after_io[key] - before_io.get(key, 0)) / 1e6:.1f} MB" for key in after_io)
    print(f"{label:<28} {seconds:8.2f} s   client tensor bytes read: {(reads.tensor_bytes - before_bytes) / 1e6:8.1f} MB   ({io})")
    return seconds, results


def warm_worker(shard: Path) -> None:
    """Import and run, in this worker, what a layer task uses (ww_core, numpy, the safetensors reader) before timing.

    A one-off start-up cost per worker: a warm-up task sent through the executor lands on one worker only, and
    the other then paid its imports inside the timed run (0.15 s late for its first layer, measured).
    """
    ww_core.analyze({"warm.weight": np.eye(64)}, workers=1)
    ww_core.describe(shard)


def on_dask(workers: int, folder: Path, reads: ClientReads) -> tuple[float, Any]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=ONE_BLAS_THREAD) as cluster:
        with Client(cluster) as client:
            client.run(warm_worker, first_file(folder))  # every worker, not only the first one used
            return timed(
                f"LocalCluster, {workers} worker(s)",
                lambda: ww_core.analyze(folder, executor=client.get_executor(), workers=workers),
                reads,
            )


def warm_ray_worker(shard: Path) -> None:
    """``warm_worker``, then a pause: ``workers`` of these at once on ``workers`` CPUs land on distinct worker processes."""
    warm_worker(shard)
    time.sleep(1.0)


def on_ray(workers: int, folder: Path, reads: ClientReads) -> tuple[float, Any]:
    import ray

    from ww_core.pipeline.ray_cluster import RayExecutor

    ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
    try:
        executor = RayExecutor()
        shard = first_file(folder)
        for warming in [executor.submit(warm_ray_worker, shard) for _ in range(workers)]:
            warming.result()
        return timed(f"Ray, {workers} worker(s)", lambda: ww_core.analyze(folder, executor=executor, workers=workers), reads)
    finally:
        ray.shutdown()


ENGINES = {"dask": on_dask, "ray": on_ray}


def same_rows(first: Any, second: Any) -> float:
    """The largest relative difference of alpha, D and log_norm between two runs."""
    worst = 0.0
    for a, b in zip(first.details, second.details, strict=True):
        for column in ("alpha", "D", "log_norm"):
            worst = max(worst, abs(a[column] - b[column]) / max(abs(a[column]), 1e-300))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--engines", default="dask", help="comma-separated: dask, ray (default: dask)")
    parser.add_argument("--format", choices=("safetensors", "msgpack"), default="safetensors")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    engines = args.engines.split(",")
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"--engines: unknown {', '.join(sorted(unknown))}; known: {', '.join(ENGINES)}")
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    verdicts = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        if args.format == "msgpack":
            size = write_msgpack(folder, args.layers, args.width)
            folder /= "state.msgpack"
            print(f"checkpoint: {args.layers} layers of {args.width}², one Flax msgpack file, {size / 1e6:.1f} MB")
        else:
            size = write_checkpoint(folder, args.layers, args.width, args.shards)
            print(f"checkpoint: {args.layers} layers of {args.width}², {args.shards} shards, {size / 1e6:.1f} MB")
        reads = ClientReads()
        serial_s, serial = timed("serial (client reads all)", lambda: ww_core.analyze(folder, workers=1), reads)
        for engine in engines:
            one_s, one = ENGINES[engine](1, folder, reads)
            two_s, two = ENGINES[engine](2, folder, reads)
            print(f"{engine}: per-layer cost, 1 worker, 1 BLAS thread: {one_s / args.layers:.2f} s ({args.width}²)")
            print(f"{engine}: rows vs serial: largest relative difference {max(same_rows(serial, one), same_rows(serial, two)):.1e}")
            speedup = one_s / two_s
            verdict = "PASS" if speedup >= SCALING_TARGET else "FAIL"
            verdicts.append(
                f"{verdict} {engine} scaling 1→2 worker processes: {speedup:.2f}× (target ≥ {SCALING_TARGET}×); serial {serial_s:.2f} s"
            )
    print("\n".join(verdicts))
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
