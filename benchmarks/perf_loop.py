"""How much does ganlab's generic training loop cost over a minimal hand-written one?

Both loops train the same networks (the vanilla variant's default nets, built from the
same seed), on the same data stream, with the same batch size, optimiser and losses, in
one process. They alternate in short timed blocks so that any slowdown of the machine
(other jobs, frequency scaling) hits both alike: ganlab's Trainer runs its ordinary
``train()``, and every ``--block`` steps its progress callback times that block, runs a
block of the hand-written loop, and times that too. The first block of each is warm-up.

Both loops draw data and noise from identically seeded generators in the same order, so
after equal steps their generators should hold the same weights: the script prints the
largest difference as a check that they do the same work.

Settings: the 2-D ring (MLP, batch 512) and a DCGAN on 28x28 digits (batch 64). With
``--eval``, also the evaluation throughput of a digits run with and without cached
real-data statistics.

    python benchmarks/perf_loop.py                 # both settings, 1 thread
    python benchmarks/perf_loop.py --setting ring --rounds 20 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganlab.plugins import get_registry
from ganlab.train.loop import Trainer
from ganlab.train.rundir import RunDir
from ganlab.train.setup import new_config

SETTINGS = {
    # name: (dataset, data options, hyperparameter overrides, default block length)
    "ring": ("ring8", {}, {}, 100),
    "dcgan28": ("digits", {"image_size": "28"}, {}, 25),
}


class HandWrittenLoop:
    """The vanilla GAN as a tutorial would write it: nothing but the two updates."""

    def __init__(self, registry, config, dataset):
        variant = registry.variant(config.variant)
        torch.manual_seed(config.seed)  # the same initial weights as ganlab's build_objective
        self.G, self.D = registry.nets_for(variant, dataset.spec.kind)(dataset.spec, config.hparams)
        hp = config.hparams
        betas = (hp["beta1"], hp["beta2"])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=hp["lr_g"], betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=hp["lr_d"], betas=betas)
        self.dataset, self.batch = dataset, int(hp["batch_size"])
        self.latent = self.G.latent_dim
        # The same seeds and the same order of draws as ganlab's Trainer.
        self.data_rng = torch.Generator().manual_seed(config.seed * 2 + 1)
        self.latent_rng = torch.Generator().manual_seed(config.seed * 2 + 2)

    def steps(self, n: int) -> None:
        G, D, b = self.G, self.D, self.batch
        for _ in range(n):
            real, _ = self.dataset.batch(b, self.data_rng)
            with torch.no_grad():
                fake = G(torch.randn(b, self.latent, generator=self.latent_rng))
            d_loss = -(F.logsigmoid(D(real)).mean() + F.logsigmoid(-D(fake)).mean())
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            fake = G(torch.randn(b, self.latent, generator=self.latent_rng))
            g_loss = F.logsigmoid(-D(fake)).mean()  # the saturating loss, as vanilla's default
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()


def compare_loops(setting: str, rounds: int, block: int | None, seed: int = 0, log_every: int = 100) -> dict:
    registry = get_registry()
    dataset_name, data_options, overrides, default_block = SETTINGS[setting]
    block = block or default_block
    total = (rounds + 1) * block + 1  # +1: the final step saves pictures and a checkpoint, untimed
    with tempfile.TemporaryDirectory() as tmp:
        config, dataset = new_config(registry, "vanilla", dataset_name, total, seed, overrides, data_options,
                                     log_every=log_every, sample_every=0, ckpt_every=0, eval_every=0, device="cpu")
        run = RunDir(Path(tmp) / "run")
        run.prepare_new(overwrite=False)
        trainer = Trainer(registry, config, dataset, run)
        hand = HandWrittenLoop(registry, config, dataset)
        times: dict[str, list[float]] = {"ganlab": [], "hand": []}
        weight_gap: list[float] = []
        mark = [time.perf_counter()]

        def on_step(step: int) -> None:
            if step % block or step > (rounds + 1) * block:
                return
            times["ganlab"].append(time.perf_counter() - mark[0])
            start = time.perf_counter()
            hand.steps(block)
            times["hand"].append(time.perf_counter() - start)
            if step == (rounds + 1) * block:
                weight_gap.append(max((a - b).abs().max().item() for a, b in
                                      zip(trainer.G.parameters(), hand.G.parameters())))
            mark[0] = time.perf_counter()

        trainer.progress = on_step
        trainer.train()
    ganlab_t, hand_t = times["ganlab"][1:], times["hand"][1:]  # drop the warm-up block
    ganlab_sps = block * len(ganlab_t) / sum(ganlab_t)
    hand_sps = block * len(hand_t) / sum(hand_t)
    return {"setting": setting, "dataset": dataset_name, "batch": config.hparams["batch_size"],
            "block": block, "rounds": rounds, "ganlab_steps_per_s": ganlab_sps,
            "hand_steps_per_s": hand_sps, "ratio": ganlab_sps / hand_sps,
            "ratio_median_of_rounds": statistics.median(h / g for g, h in zip(ganlab_t, hand_t)),
            "max_weight_gap": weight_gap[0] if weight_gap else float("nan")}


def eval_throughput(num_samples: int, seed: int = 0) -> list[dict]:
    """Evaluate one digits run three times: with an empty cache (the domain classifier is
    trained and the real statistics computed), with only the real statistics removed,
    and with everything cached."""
    from ganlab.metrics import cache
    from ganlab.metrics.evaluate import evaluate_run
    from ganlab.train.api import TrainRequest, train

    registry = get_registry()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[cache.CACHE_ENV] = str(Path(tmp) / "cache")
        run = Path(tmp) / "run"
        train(registry, TrainRequest("vanilla", "digits", 200, run, seed=seed, sample_every=0,
                                     ckpt_every=0, log_every=100))

        def timed(label: str) -> None:
            start = time.perf_counter()
            evaluate_run(registry, run, num_samples=num_samples, seed=seed)
            elapsed = time.perf_counter() - start
            rows.append({"cache": label, "seconds": elapsed, "samples_per_s": num_samples / elapsed})

        timed("empty (classifier trained, real stats computed)")
        removed = _drop_real_statistics(Path(tmp) / "cache")
        timed(f"classifier cached, real stats recomputed ({removed} entries dropped)")
        timed("all cached")
    return rows


def _drop_real_statistics(root: Path) -> int:
    """Remove cached real-data features/statistics, keep trained classifiers."""
    dropped = 0
    for path in root.rglob("*"):
        if path.is_file() and "classifier" not in str(path.relative_to(root)):
            path.unlink()
            dropped += 1
    return dropped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=[*SETTINGS, "all"], default="all")
    parser.add_argument("--rounds", type=int, default=10, help="timed blocks per loop (after one warm-up)")
    parser.add_argument("--block", type=int, default=None, help="steps per block [ring 100, dcgan28 25]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadiest on a shared CPU)")
    parser.add_argument("--eval", action="store_true", help="also measure evaluation throughput")
    parser.add_argument("--eval-samples", type=int, default=2000)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs, python "
          f"{sys.version.split()[0]}")
    for setting in (SETTINGS if args.setting == "all" else [args.setting]):
        r = compare_loops(setting, args.rounds, args.block)
        print(f"{r['setting']:8s} ({r['dataset']}, batch {r['batch']}): ganlab {r['ganlab_steps_per_s']:7.1f} "
              f"steps/s | hand-written {r['hand_steps_per_s']:7.1f} steps/s | ratio {r['ratio']:.3f} "
              f"(median of {r['rounds']} rounds {r['ratio_median_of_rounds']:.3f}) | "
              f"max |ΔG weights| {r['max_weight_gap']:.2e}", flush=True)
    if args.eval:
        for row in eval_throughput(args.eval_samples):
            print(f"eval digits, {args.eval_samples} samples, cache {row['cache']}: {row['seconds']:.2f} s "
                  f"({row['samples_per_s']:.0f} samples/s)", flush=True)


if __name__ == "__main__":
    main()
