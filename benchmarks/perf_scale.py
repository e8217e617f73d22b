"""Training throughput at 1 and 2 processes: steps/s and images/s per setting.

Each measurement is a real ``torchrun --standalone --nproc-per-node P -m ganlab train``
run, so it includes everything a user pays for: DDP's gradient all-reduce, the sharded
data draws, the per-step stop vote and rank 0's logging. Throughput is read from the
run's own ``metrics.jsonl`` (``steps_per_s`` between log records, measured on rank 0);
the first interval is warm-up and is dropped; the median of the rest is reported.

- steps/s: generator updates per second (one D and one G update each, n_critic = 1).
- images/s: steps/s x the global batch = real samples through D per second (D also sees
  as many generated ones, and G a batch of its own, per step).

Two ways to scale (``batch_size`` is the global batch, split over the processes):
- strong: the same global batch at P = 1 and 2 (each process does half the work);
- weak: the global batch grows with P (each process keeps the 1-process batch).

Settings: the 2-D ring (MLP, batch 512) and a DCGAN on 28x28 digits (batch 64).

    python benchmarks/perf_scale.py                     # CPU, 1 thread per process
    python benchmarks/perf_scale.py --device cuda       # one GPU per process (NCCL)
    python benchmarks/perf_scale.py --setting ring --json perf.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SETTINGS = {
    # name: (dataset, data options, global batch, steps, log interval)
    "ring": ("ring8", [], 512, 600, 100),
    "dcgan28": ("digits", ["image_size=28"], 64, 150, 25),
}


def torchrun_exe() -> str:
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if not found:
        sys.exit("torchrun not found next to this python; install torch in this environment")
    return found


def measure(setting: str, procs: int, batch: int, device: str, threads: int, workdir: Path,
            steps_scale: float) -> dict:
    dataset, data_opts, _, steps, log_every = SETTINGS[setting]
    steps = max(int(steps * steps_scale) // log_every * log_every, 3 * log_every)
    out = workdir / f"{setting}-p{procs}-b{batch}"
    cmd = [torchrun_exe(), "--standalone", "--nproc-per-node", str(procs), "-m", "ganlab", "train",
           "vanilla", "--dataset", dataset, "--steps", str(steps), "--log-every", str(log_every),
           "--sample-every", "0", "--ckpt-every", "0", "--set", f"batch_size={batch}",
           "--device", device, "--out", str(out), "-q"]
    for opt in data_opts:
        cmd += ["--data-opt", opt]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["steps_per_s"] for r in records[1:]]  # the first interval is warm-up
    steps_per_s = statistics.median(rates)
    return {"setting": setting, "processes": procs, "global_batch": batch, "per_process_batch": batch // procs,
            "steps": steps, "steps_per_s": steps_per_s, "images_per_s": steps_per_s * batch,
            "spread": [min(rates), max(rates)], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), action="append",
                        help="Repeatable; default: all settings.")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (one GPU per process).")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per process (CPU).")
    parser.add_argument("--procs", default="1,2", help="Process counts to measure, e.g. 1,2,4.")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="Multiply every setting's steps.")
    parser.add_argument("--json", type=Path, help="Also write the rows as JSON here.")
    args = parser.parse_args()
    procs = [int(p) for p in args.procs.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganlab-perf-scale-") as tmp:
        for setting in args.setting or list(SETTINGS):
            batch = SETTINGS[setting][2]
            plan = [(1, batch)] + [(p, batch) for p in procs if p > 1] + [(p, batch * p) for p in procs if p > 1]
            for p, b in plan:
                row = measure(setting, p, b, args.device, args.threads, Path(tmp), args.steps_scale)
                row["scaling"] = "-" if p == 1 else ("strong" if b == batch else "weak")
                rows.append(row)
                print(f"  {setting} P={p} batch={b}: {row['steps_per_s']:.1f} steps/s", file=sys.stderr)
    cpu = platform.processor() or platform.machine()
    print(f"ganlab perf_scale: torch {torch.__version__}, device {args.device}, {os.cpu_count()} CPU cores "
          f"({cpu}), {args.threads} thread(s) per process, vanilla GAN")
    print()
    print("| setting | processes | scaling | global batch | per process | steps/s | images/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    base = {r["setting"]: r["images_per_s"] for r in rows if r["processes"] == 1}
    for r in rows:
        print(f"| {r['setting']} | {r['processes']} | {r['scaling']} | {r['global_batch']} | "
              f"{r['per_process_batch']} | {r['steps_per_s']:.1f} | {r['images_per_s']:,.0f} | "
              f"{r['images_per_s'] / base[r['setting']]:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
