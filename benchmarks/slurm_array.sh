#!/usr/bin/env bash
# Spread a ganlab bench suite over a Slurm job array (one shard per array task), then merge.
#
#   bash benchmarks/slurm_array.sh SUITE SHARDS [RESULTS]
#   bash benchmarks/slurm_array.sh modes 8 /shared/ganlab/bench-modes
#
# This submits two jobs: an array of SHARDS tasks, task i running
#     ganlab bench SUITE --shard i/SHARDS --results RESULTS
# and, once every task has ended, one job running
#     ganlab leaderboard RESULTS
# Shards are numbered 1..SHARDS and each appends to its own results-shard{i}of{SHARDS}.jsonl,
# so RESULTS must be on storage every node sees. A preempted or failed task is simply run
# again (sbatch --array=i ...): cells already in RESULTS are skipped. The merge runs after
# all tasks (afterany), so a leaderboard appears even when some cell failed; rerunning the
# failed shard and then `ganlab leaderboard RESULTS` completes it.
#
# Settings from the environment:
#   GANLAB_DEVICE      cpu (default) or cuda; with cuda add a GPU request to SBATCH_GRES
#   SBATCH_GRES        e.g. gpu:1 (read by sbatch itself)
#   GANLAB_BENCH_ARGS  extra bench flags, e.g. "--jobs 2" or "--dry-run"
#   GANLAB_ENV         a file to source first (a virtual environment's bin/activate)
#
#SBATCH --job-name=ganlab-bench
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --output=slurm-%x-%A_%a.out

set -euo pipefail

SUITE=${1:?usage: slurm_array.sh SUITE SHARDS [RESULTS]}
SHARDS=${2:?usage: slurm_array.sh SUITE SHARDS [RESULTS]}
RESULTS=${3:-bench-results/$SUITE}
ROLE=${GANLAB_SLURM_ROLE:-submit}

if [[ -n "${GANLAB_ENV:-}" ]]; then
    # shellcheck disable=SC1090
    source "$GANLAB_ENV"
fi

case "$ROLE" in
submit)
    [[ "$SHARDS" =~ ^[1-9][0-9]*$ ]] || { echo "SHARDS must be a positive integer, got $SHARDS" >&2; exit 2; }
    mkdir -p "$RESULTS"
    script=$(realpath "$0")
    array_id=$(sbatch --parsable --array="1-$SHARDS" --export="ALL,GANLAB_SLURM_ROLE=shard" \
        "$script" "$SUITE" "$SHARDS" "$RESULTS")
    merge_id=$(sbatch --parsable --dependency="afterany:${array_id%%;*}" --output="slurm-%x-%j.out" \
        --job-name=ganlab-leaderboard --export="ALL,GANLAB_SLURM_ROLE=merge" \
        "$script" "$SUITE" "$SHARDS" "$RESULTS")
    echo "submitted $SHARDS shards of $SUITE as job $array_id; leaderboard job $merge_id -> $RESULTS"
    ;;
shard)
    index=${SLURM_ARRAY_TASK_ID:?the shard role runs inside a Slurm array task}
    # shellcheck disable=SC2086  # GANLAB_BENCH_ARGS is a list of flags
    exec ganlab bench "$SUITE" --shard "$index/$SHARDS" --results "$RESULTS" \
        --device "${GANLAB_DEVICE:-cpu}" ${GANLAB_BENCH_ARGS:-}
    ;;
merge)
    exec ganlab leaderboard "$RESULTS"
    ;;
*)
    echo "GANLAB_SLURM_ROLE must be submit, shard or merge, got $ROLE" >&2
    exit 2
    ;;
esac
