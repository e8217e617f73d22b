"""The short check to run when a GPU machine is lent: does every fast path work there, how fast?

    python benchmarks/device_check.py               # the first CUDA device, else the CPU
    python benchmarks/device_check.py --device cpu  # force the CPU versions

Each check trains vanilla GAN for a few dozen steps through ganlab's own API and prints
one line: the check, ok / refused / FAILED, steps/s after warm-up, wall seconds, a note.
The checks: fp32 baseline (DCGAN on 28x28 digits; 8x8 on a CPU), bf16 autocast, channels_last, both,
torch.compile (first step timed separately: that is the compilation), the image-folder
stream with DataLoader workers (pinned memory on CUDA), and DDP: 2 processes under
torchrun (NCCL when there are 2 GPUs, gloo on the CPU otherwise) plus, on one GPU, a
1-process NCCL group so DDP's CUDA path runs too. Without a GPU the script says so and
runs the CPU versions, so the script itself is tested on any machine.

Paste what it prints into benchmarks/README.md ("Device check").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from ganlab.errors import GanlabError
from ganlab.plugins import get_registry
from ganlab.train.api import TrainRequest, train
from ganlab.train.loop import Interrupted

DIGITS28 = {"image_size": "28"}


def timed_train(out: Path, steps: int, **fields) -> dict:
    """Train; steps/s from the records after the first (warm-up) interval."""
    log_every = max(steps // 4, 1)
    request = TrainRequest(variant="vanilla", steps=steps, out=out, log_every=log_every,
                           sample_every=0, ckpt_every=0, **fields)
    t0 = time.perf_counter()
    first_step: list[float] = []

    def progress(step: int) -> None:
        if step == 1:
            first_step.append(time.perf_counter() - t0)

    trainer, record = train(get_registry(), request, progress=progress)
    wall = time.perf_counter() - t0
    rates = [r["steps_per_s"] for r in trainer.run.read_metrics()[1:]]
    finite = all(torch.isfinite(p).all() for p in trainer.G.parameters())
    return {"steps_per_s": sorted(rates)[len(rates) // 2] if rates else float("nan"), "wall_s": wall,
            "first_step_s": first_step[0] if first_step else float("nan"), "finite": finite,
            "d_loss": record.get("d_loss")}


def make_folder(root: Path, count: int = 256, size: int = 40) -> Path:
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return root


def torchrun_two(device: str, workdir: Path) -> dict:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    out = workdir / "ddp2"
    cmd = [exe, "--standalone", "--nproc-per-node", "2", "-m", "ganlab", "train", "vanilla",
           "--dataset", "digits", "--data-opt", f"image_size={28 if device.startswith('cuda') else 8}",
           "--steps", "60", "--log-every", "15",
           "--sample-every", "0", "--device", device, "--out", str(out), "-q"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "torchrun failed")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["steps_per_s"] for r in records[1:]]
    config = json.loads((out / "config.json").read_text())
    return {"steps_per_s": sorted(rates)[len(rates) // 2], "wall_s": time.perf_counter() - t0,
            "first_step_s": float("nan"), "finite": True, "note": f"world_size={config['world_size']}"}


def _nccl_one_rank(rank: int, out: str, port: int) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    dist.init_process_group("nccl")  # a group of one: ganlab wraps in DDP whenever a group exists
    try:
        result = timed_train(Path(out) / "run", 60, dataset="digits", data_options=DIGITS28, device="cuda")
        result["wrapped"] = True
        Path(out, "result.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def nccl_single(workdir: Path) -> dict:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_nccl_one_rank, args=(str(workdir), port), nprocs=1, start_method="spawn")
    result = json.loads((workdir / "result.json").read_text())
    result["note"] = "DDP over NCCL, world size 1"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="Default: cuda if available, else cpu.")
    parser.add_argument("--steps", type=int, default=80, help="Steps per single-process check.")
    parser.add_argument("--skip", action="append", default=[], help="Skip checks whose name contains this.")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_gpu = device.startswith("cuda")
    print(f"ganlab device check: torch {torch.__version__}, CUDA build {torch.version.cuda}, "
          f"{os.cpu_count()} CPU cores")
    if on_gpu:
        props = torch.cuda.get_device_properties(0)
        print(f"device: {torch.cuda.device_count()} x {props.name}, {props.total_memory / 2**30:.0f} GiB, "
              f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}, NCCL "
              f"{'.'.join(map(str, torch.cuda.nccl.version()))}")
    else:
        print("device: no CUDA device here -- running the CPU version of every check "
              "(these are not GPU numbers)")
    if not on_gpu:  # one thread per process: the torchrun check runs two of them
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    steps = args.steps
    # On a CPU the point is that every path runs: 8x8 digits keep it to a minute or two.
    image = {"image_size": "28"} if on_gpu else {"image_size": "8"}
    digits = {"dataset": "digits", "data_options": image, "device": device}
    checks = [
        (f"fp32 dcgan{image['image_size']}", lambda w: timed_train(w / "fp32", steps, **digits)),
        ("bf16 autocast", lambda w: timed_train(w / "bf16", steps, precision="bf16", **digits)),
        ("channels_last", lambda w: timed_train(w / "cl", steps, channels_last=True, **digits)),
        ("bf16 + channels_last", lambda w: timed_train(w / "bf16cl", steps, precision="bf16",
                                                       channels_last=True, **digits)),
        ("compile" + (" dcgan28" if on_gpu else " ring (CPU: small net)"),
         lambda w: timed_train(w / "compile", steps, compile=True,
                               **(digits if on_gpu else {"dataset": "ring8", "device": device,
                                                         "overrides": {"hidden": "32"}}))),
        ("folder stream, 4 workers", lambda w: timed_train(
            w / "workers", steps, dataset="folder", workers=4, device=device,
            data_options={"data_dir": str(make_folder(w / "images")),
                          "image_size": "32" if on_gpu else "8"})),
        ("torchrun 2 processes", lambda w: torchrun_two(device if torch.cuda.device_count() >= 2 else "cpu", w)),
    ]
    if on_gpu and torch.cuda.device_count() == 1:
        checks.append(("DDP NCCL, 1 GPU", lambda w: nccl_single(w)))
    print()
    print(f"| check | result | steps/s | first step s | wall s | note |")
    print("|---|---|---|---|---|---|")
    failures = 0
    for name, run in checks:
        if any(part in name for part in args.skip):
            continue
        with tempfile.TemporaryDirectory(prefix="ganlab-device-check-") as tmp:
            try:
                r = run(Path(tmp))
                status = "ok" if r.get("finite", True) else "FAILED (non-finite weights)"
                failures += status != "ok"
                note = r.get("note", "") or (f"d_loss {r['d_loss']:.3f}" if r.get("d_loss") is not None else "")
                print(f"| {name} | {status} | {r['steps_per_s']:.1f} | {r['first_step_s']:.2f} | "
                      f"{r['wall_s']:.1f} | {note} |", flush=True)
            except Interrupted:
                raise
            except GanlabError as exc:
                print(f"| {name} | refused | - | - | - | {exc} |", flush=True)
            except Exception as exc:  # noqa: BLE001 - report every check, then fail at the end
                failures += 1
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                print(f"| {name} | FAILED | - | - | - | {last[:200]} |", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
