"""Data-parallel training: 2 CPU processes with gloo against one process on the whole batch.

Why the comparison can be exact up to float rounding: ``batch_size`` is the global batch,
every rank runs the same seeded data and latent streams and keeps its slice of each draw,
so the two ranks together see exactly the samples the single process sees; each rank's
loss is a mean over its half and DDP averages the gradients, which gives the gradient of
the mean over the whole batch. Only the summation order differs, hence the tolerance.
The nets compared have no batch-coupled layer (BatchNorm statistics are per rank).
"""

from __future__ import annotations

import functools

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from ganlab.interfaces import Objective, VariantSpec
from ganlab.train import distributed
from ganlab.train.api import TrainRequest, train
from ganlab.train.setup import RunConfig, build_objective

#: Max |difference| between a 2-process and a 1-process weight after STEPS steps. Observed
#: ~1e-7 (float32 summation order); a wrong shard, a missing all-reduce or a doubled
#: gradient gives differences of 1e-3 and more after the first step.
TOLERANCE = 1e-5
STEPS = 15


class R1TestObjective(Objective):
    """Non-saturating loss + R1 (gamma/2 E||grad_x D(x)||^2 on real data): a penalty with
    no randomness of its own, taken with create_graph=True and one ordinary backward."""

    def discriminator_loss(self, real_scores, fake_scores):
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores, real_scores=None):
        return F.softplus(-fake_scores).mean()

    def penalty(self, real, fake, real_labels, fake_labels):
        x = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.score(x, real_labels).sum(), x, create_graph=True)
        return 5.0 * grad.flatten(1).pow(2).sum(1).mean()


@functools.lru_cache(maxsize=1)
def registry_with_test_variant():
    """A registry of its own (per process), so the test variant never leaks into others' tests."""
    from ganlab.plugins import build_plugin_set

    registry = build_plugin_set().registry
    registry.current_plugin = "tests"
    registry.add_variant(VariantSpec(name="r1-ddp-test", objective=R1TestObjective,
                                     description="test: non-saturating + R1", citation="test"))
    return registry


CASES = {
    # name: (variant, hyperparameter overrides)
    "vanilla": ("vanilla", {"batch_size": "64", "hidden": "32", "latent_dim": "8"}),
    "r1": ("r1-ddp-test", {"batch_size": "64", "hidden": "32", "latent_dim": "8", "ema": "0.9"}),
}


def request_for(case: str, out: Path, steps: int = STEPS, resume: bool = False) -> TrainRequest:
    variant, overrides = CASES[case]
    return TrainRequest(variant=variant, dataset="ring8", steps=steps, out=out, seed=3,
                        overrides=None if resume else dict(overrides), log_every=5, sample_every=0,
                        ckpt_every=0, resume=resume)


def generator_weights(trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in trainer.G.parameters()])


def _rank_main(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    registry = registry_with_test_variant()
    try:
        for case in CASES:
            trainer, record = train(registry, request_for(case, Path(root) / f"ddp-{case}"), rank=rank)
            torch.save({"G": generator_weights(trainer), "record": record,
                        "ctx": (trainer.dist.rank, trainer.dist.world_size, trainer.local_batch),
                        "wrapped": type(trainer.objective.G).__name__},
                       Path(root) / f"{case}-rank{rank}.pt")
        # Stop after 8 steps, keep a copy of that run, resume to STEPS with 2 processes.
        run = Path(root) / "ddp-resume"
        train(registry, request_for("vanilla", run, steps=8), rank=rank)
        torch.distributed.barrier()  # rank 0 has written the checkpoint every rank resumes from
        if rank == 0:
            shutil.copytree(run, Path(root) / "ddp-stopped-at-8")
        trainer, _ = train(registry, request_for("vanilla", run, resume=True), rank=rank)
        torch.save({"G": generator_weights(trainer)}, Path(root) / f"resumed-rank{rank}.pt")
    finally:
        distributed.leave()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_ranks(fn, world: int, *args, timeout: float = 180) -> None:
    context = mp.start_processes(fn, args=(world, free_port(), *args), nprocs=world, join=False,
                                 start_method="spawn")
    deadline = timeout
    while not context.join(timeout=5):
        deadline -= 5
        if deadline <= 0:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{world} gloo processes did not finish in {timeout} s")


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    run_ranks(_rank_main, 2, str(root))
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_keep_identical_generators(two_rank_results, case):
    r0 = torch.load(two_rank_results / f"{case}-rank0.pt")
    r1 = torch.load(two_rank_results / f"{case}-rank1.pt")
    assert r0["ctx"] == (0, 2, 32) and r1["ctx"] == (1, 2, 32)  # global batch 64 -> 32 per rank
    assert r0["wrapped"] == "TrainingNet"
    # DDP hands every rank the same averaged gradient: the weights agree bit for bit.
    assert torch.equal(r0["G"], r1["G"])
    # Logged values are averaged over the ranks, so both ranks report the same record.
    assert r0["record"]["d_loss"] == pytest.approx(r1["record"]["d_loss"], abs=1e-7)


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_match_one_process_on_the_global_batch(two_rank_results, tmp_path, case):
    single, record = train(registry_with_test_variant(), request_for(case, tmp_path / case))
    assert single.local_batch == 64 and not single.dist.active
    ddp = torch.load(two_rank_results / f"{case}-rank0.pt")
    diff = (generator_weights(single) - ddp["G"]).abs().max().item()
    assert diff < TOLERANCE, f"{case}: 2 processes differ from 1 process by {diff:.2e}"
    # The runs really trained: weights moved far more than the tolerance.
    initial = build_objective(registry_with_test_variant(), single.config).objective.G  # same seed
    moved = (torch.cat([p.detach().flatten() for p in initial.parameters()]) - ddp["G"]).abs().max().item()
    assert moved > 100 * TOLERANCE
    assert record["d_loss"] == pytest.approx(ddp["record"]["d_loss"], abs=1e-4)


def test_resume_continues_the_same_streams_at_any_process_count(two_rank_results, tmp_path):
    """Every rank's RNG state is the global one rank 0 saved, so a run stopped and resumed
    (with 2 processes, or with 1) ends where an uninterrupted run ends."""
    straight, _ = train(registry_with_test_variant(), request_for("vanilla", tmp_path / "straight"))
    resumed_2 = torch.load(two_rank_results / "resumed-rank0.pt")["G"]
    assert torch.equal(resumed_2, torch.load(two_rank_results / "resumed-rank1.pt")["G"])
    assert (generator_weights(straight) - resumed_2).abs().max().item() < TOLERANCE
    copy = tmp_path / "resumed-alone"
    shutil.copytree(two_rank_results / "ddp-stopped-at-8", copy)
    resumed_1, _ = train(registry_with_test_variant(), request_for("vanilla", copy, resume=True))
    assert resumed_1.local_batch == 64
    assert (generator_weights(straight) - generator_weights(resumed_1)).abs().max().item() < TOLERANCE


def test_only_rank_zero_writes_the_run(two_rank_results):
    run = two_rank_results / "ddp-vanilla"
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2 and config["hparams"]["batch_size"] == 64
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [5, 10, 15]  # once each: rank 1 wrote nothing
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    fresh = build_objective(registry_with_test_variant(), RunConfig.from_dict(config)).objective
    # The unwrapped networks' own keys: no "module." (DDP) or "_orig_mod." (compile) prefix.
    assert list(state["modules"]["G"]) == list(fresh.G.state_dict())
    assert list(state["modules"]["D"]) == list(fresh.D.state_dict())
    assert sorted(p.name for p in two_rank_results.iterdir() if p.is_dir()) == [
        "ddp-r1", "ddp-resume", "ddp-stopped-at-8", "ddp-vanilla"]


# ---- pieces, in one process ------------------------------------------------------------------
class CountingData:
    """A dataset whose rows are their own draw index, to see which rows a rank got."""

    def __init__(self):
        from ganlab.interfaces import DataSpec

        self.spec = DataSpec(name="count", kind="points", shape=(1,))

    def batch(self, n, rng):
        return torch.randint(1000, (n, 1), generator=rng).float(), torch.arange(n)

    def to(self, device):
        return self


def test_a_rank_takes_its_slice_of_the_global_draw():
    data = CountingData()
    global_rows, global_labels = data.batch(8, torch.Generator().manual_seed(1))
    for rank in (0, 1):
        ctx = distributed.DistContext(rank=rank, world_size=2)
        rows, labels = distributed.shard_dataset(data, ctx).batch(4, torch.Generator().manual_seed(1))
        assert torch.equal(rows, global_rows[4 * rank:4 * rank + 4])
        assert labels.tolist() == list(range(4 * rank, 4 * rank + 4))
    assert distributed.shard_dataset(data, distributed.SINGLE) is data


def test_sharded_draws_slice_latents_and_labels():
    ctx = distributed.DistContext(rank=1, world_size=3)
    draw = distributed.sharded_draw(lambda n, rng: torch.randn(n, 2, generator=rng), ctx)
    full = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draw(2, torch.Generator().manual_seed(0)), full[2:4])
    assert distributed.sharded_draw(lambda n: None, ctx)(2) is None


def test_global_batch_must_divide_over_the_ranks():
    from ganlab.errors import GanlabError

    assert distributed.local_batch(64, distributed.DistContext(world_size=4)) == 16
    with pytest.raises(GanlabError, match="batch_size 10 is the global batch.*3 processes.*batch_size=9"):
        distributed.local_batch(10, distributed.DistContext(world_size=3))


def test_launch_env_reads_torchrun_variables(monkeypatch):
    from ganlab.errors import GanlabError

    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.launch_env() == distributed.DistContext(rank=3, world_size=4, local_rank=1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(GanlabError, match="inconsistent: RANK=4, WORLD_SIZE=4"):
        distributed.launch_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(GanlabError, match="WORLD_SIZE='two' is not an integer"):
        distributed.launch_env()


def test_cuda_under_torchrun_means_the_local_gpu():
    ctx = distributed.DistContext(rank=5, world_size=8, local_rank=1, active=True)
    assert distributed.local_device("cuda", ctx) == torch.device("cuda", 1)
    assert distributed.local_device("cpu", ctx) == torch.device("cpu")
    assert distributed.local_device("cuda:0", distributed.SINGLE) == torch.device("cuda", 0)


# ---- the real launcher -----------------------------------------------------------------------
def torchrun(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([exe, "--standalone", "--nproc-per-node", "2", "-m", "ganlab", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


@pytest.mark.slow
def test_torchrun_trains_digits_into_one_run_and_resumes(tmp_path):
    done = torchrun("train", "vanilla", "--dataset", "digits", "--steps", "100", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["vanilla-digits-s0"]
    run = tmp_path / "runs" / "vanilla-digits-s0"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    assert done.stdout.count("trained vanilla on digits for 100 steps") == 1  # rank 0 only
    resumed = torchrun("train", "vanilla", "--dataset", "digits", "--steps", "150", "--resume", "-q",
                       "--log-every", "50", "--out", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [100, 150]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 150


@pytest.mark.slow
def test_torchrun_refuses_bad_input_in_one_line(tmp_path):
    done = torchrun("train", "vanilla", "--dataset", "ring8", "--steps", "5", "--set", "batch_size=7",
                    cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.count("ganlab: error: batch_size 7 is the global batch") == 1
    assert not (tmp_path / "runs").exists()
