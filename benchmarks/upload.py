"""Benchmark the upload stage against the Google Cloud CLI on fake-gcs-server, with a hash floor.

One run, one fake-gcs-server (in memory, started with bp_ops.emulators), one dataset of
random files (~500 MB in ~200 files by default, a third of them larger than one 8 MiB chunk
so that resumable uploads are exercised). Three variants move or read the same files:

  (a) ours    bp_upload's DatasetPublisher through firebase-admin: one read pass per file that
              feeds the upload and computes md5, crc32c and sha256; every object's server-side
              md5 and crc32c checked; sha256 against the import manifest; manifest and LATEST
              written last (`--read-back` adds a variant that downloads everything again)
  (b) gcloud  the Google Cloud CLI pointed at the same emulator, its own crc32c validation on
              (the default), with its default parallelism, in two forms:
              `gcloud storage cp 'DIR/**' gs://BUCKET/PREFIX/` and
              `gcloud storage rsync -r DIR gs://BUCKET/PREFIX/`. (`cp -r` itself fails against
              fake-gcs-server: it first asks for the bucket's storage layout, an API the
              emulator lacks. `cp DIR/**` runs the same parallel copy without that call; it
              flattens names, which are unique here, so the same bytes move.)
  (c) floor   md5 + crc32c + sha256 of the same files, no network, on as many threads as (a)

Each variant runs `--repeat` times, interleaved, into a fresh prefix; the fastest run counts
(the machine is shared). Target: ours >= 1x the faster gcloud form's MB/s, verification on.

    .venv/bin/python benchmarks/upload.py [--files 200] [--mb 500] [--repeat 2] [--read-back]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_VS_GCLOUD = 1.0
MIB = 1024 * 1024


def make_files(folder: Path, files: int, total_mb: float, seed: int = 1) -> int:
    """Random files, most around the mean size, every third up to 4x it; then the manifest."""
    rng = random.Random(seed)
    mean = total_mb * 1e6 / files
    weights = [rng.uniform(0.2, 1.0) * (4 if i % 3 == 0 else 1) for i in range(files)]
    scale = total_mb * 1e6 / sum(weights)
    inventory = {}
    total = 0
    block = os.urandom(4 * MIB)
    for i, w in enumerate(weights):
        size = max(1, int(w * scale))
        relative = f"data/chunk-{i // 50:03d}/episode_{i:06d}.parquet"
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with path.open("wb") as handle:
            left = size
            salt = i.to_bytes(8, "big")  # no two files alike
            while left:
                piece = (salt + block)[: min(left, len(block) + 8)]
                handle.write(piece)
                digest.update(piece)
                left -= len(piece)
        inventory[relative] = {"sha256": digest.hexdigest(), "size": size}
        total += size
    (folder / "import_manifest.json").write_text(json.dumps({"files": inventory}))
    print(f"dataset: {files} files, {total / 1e6:.0f} MB (mean {mean / 1e6:.1f} MB) in {folder}")
    return total


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_floor(folder: Path, threads: int) -> None:
    from bp_upload.destinations.checksums import hash_stream

    paths = sorted(p for p in folder.rglob("*") if p.is_file())

    def digest(path: Path) -> None:
        with path.open("rb") as handle:
            hash_stream(handle)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(digest, paths))


def run_ours(folder: Path, bucket: str, prefix_run: str, *, read_back: bool, threads: int) -> str:
    from bp_common.blobstore.local import LocalBlobStore
    from bp_common.config import Settings
    from bp_common.secrets import FileSecretStore
    from bp_upload.options import UploadOptions
    from bp_upload.publication.layout import DatasetLocation
    from bp_upload.publication.manifest import QualitySummary
    from bp_upload.publication.publisher import DatasetPublisher, DatasetSource, PublishRequest
    from bp_upload.wiring import firebase_destination

    settings = Settings(_env_file=None, firebase_bucket=bucket, backend="cloud")  # type: ignore[call-arg]
    options = UploadOptions(concurrency=threads, read_back=read_back)
    destination = firebase_destination(settings, FileSecretStore(folder / ".no-secrets"), options)
    publication = DatasetPublisher(destination, options).publish(
        PublishRequest(
            DatasetLocation("bench", "franka_panda", prefix_run),
            DatasetSource(LocalBlobStore(folder), "", "import_manifest.json"),
            QualitySummary("v2.1", 0, 0, None),
        )
    )
    result = publication.result
    assert result.verified == result.uploaded == result.files and not result.failures
    return result.summary()


def run_gcloud(folder: Path, target: str, env: dict[str, str], how: str) -> None:
    if how == "cp":
        command = ["gcloud", "storage", "cp", f"{folder}/**", target]
    else:
        command = ["gcloud", "storage", "rsync", "-r", str(folder), target]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{out.stderr[-3000:]}")


def count_objects(bucket: str, prefix: str) -> tuple[int, int]:
    from bp_common.blobstore.gcs import make_storage_client

    blobs = list(make_storage_client().list_blobs(bucket, prefix=prefix))
    return len(blobs), sum(int(b.size or 0) for b in blobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--mb", type=float, default=500.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="our concurrency (default 8)")
    parser.add_argument("--read-back", action="store_true", help="also time read-back mode")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if shutil.which("gcloud") is None:
        raise SystemExit("the Google Cloud CLI (gcloud) is needed for the baseline")

    from bp_common.blobstore.gcs import ensure_bucket, make_storage_client
    from bp_ops.emulators import start_fake_gcs

    work = Path(tempfile.mkdtemp(prefix="bp-upload-bench-"))
    server = start_fake_gcs(work / "logs")
    try:
        server.wait_ready(30)
        url = f"http://{server.host}"
        os.environ["STORAGE_EMULATOR_HOST"] = url
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "bp-local")
        bucket = "bp-bench-datasets"
        ensure_bucket(make_storage_client(), bucket)
        folder = work / "dataset"
        total = make_files(folder, args.files, args.mb)
        total += (folder / "import_manifest.json").stat().st_size
        gcloud_env = {
            **os.environ,
            "CLOUDSDK_CONFIG": str(work / "gcloud-config"),
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_CORE_PROJECT": "bp-local",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": url + "/",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        }
        variants = ["floor", "ours", "gcloud-cp", "gcloud-rsync"]
        variants += ["ours-read-back"] if args.read_back else []
        best: dict[str, tuple[float, float]] = {}
        notes: dict[str, str] = {}
        for attempt in range(args.repeat):
            for name in variants:
                run = f"run-{attempt:02d}{'rb' if name.endswith('back') else ''}"
                cpu0, t0 = cpu_seconds(), time.perf_counter()
                if name == "floor":
                    run_floor(folder, args.threads)
                elif name.startswith("gcloud"):
                    how = name.split("-")[1]
                    target = f"gs://{bucket}/datasets/bench/{name}/{run}/"
                    run_gcloud(folder, target, gcloud_env, how)
                else:
                    notes[name] = run_ours(
                        folder, bucket, run, read_back=name.endswith("back"), threads=args.threads
                    )
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
                print(
                    f"  {name:<15} run {attempt + 1}: {wall:6.2f} s  {total / 1e6 / wall:7.1f} MB/s"
                    f"  cpu {cpu:5.1f} s"
                )
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
        for name in ("gcloud-cp", "gcloud-rsync"):
            n, size = count_objects(bucket, f"datasets/bench/{name}/run-00/")
            print(f"{name} stored {n} objects, {size / 1e6:.0f} MB (a check that it did the work)")
        for name, note in notes.items():
            print(f"{name}: {note}")

        print(f"\n{'variant':<15} {'seconds':>8} {'MB/s':>8} {'cpu s':>7}")
        rate = {name: total / 1e6 / wall for name, (wall, _) in best.items()}
        for name, (wall, cpu) in best.items():
            print(f"{name:<15} {wall:8.2f} {rate[name]:8.1f} {cpu:7.1f}")
        cli = max(rate["gcloud-cp"], rate["gcloud-rsync"])
        ratio = rate["ours"] / cli
        print(
            f"\nours / faster gcloud: {ratio:.2f}x  (target >= {TARGET_VS_GCLOUD:.1f}x)"
            f"  {'met' if ratio >= TARGET_VS_GCLOUD else 'NOT met'}"
        )
        print(f"ours / floor:   {rate['ours'] / rate['floor']:.2f}x of the hashing floor's MB/s")
        if "ours-read-back" in rate:
            print(f"ours read-back / faster gcloud: {rate['ours-read-back'] / cli:.2f}x")
        print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
