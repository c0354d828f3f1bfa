"""Several runs per GPU (``resources.runs_per_gpu``): which run goes on which GPU.

Pure functions, shared by the executors: ``local`` keeps at most ``runs_per_gpu`` runs on
each visible GPU and gives each run its GPU through ``CUDA_VISIBLE_DEVICES``; ``slurm``
puts ``gpus x runs_per_gpu`` runs in one array task, which starts them as that many
processes on the task's GPUs. The runs of a GPU share it as separate processes (CUDA
time-slices their kernels; each keeps its own memory), so a run's results do not depend
on its neighbours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence


def task_groups(run_ids: Sequence[str], *, per_task: int) -> list[list[str]]:
    """``run_ids`` in order, cut into groups of ``per_task`` (the last may be shorter)."""
    if per_task < 1:
        raise ValueError(f"per_task must be positive, got {per_task}")
    return [list(run_ids[i : i + per_task]) for i in range(0, len(run_ids), per_task)]


def assign(run_ids: Sequence[str], *, gpus: Sequence[str], runs_per_gpu: int) -> dict[str, str]:
    """Each run's GPU: run k on ``gpus[k % len(gpus)]`` (spread before stacking), at most
    ``runs_per_gpu`` runs per GPU; more runs than slots is an error."""
    if not gpus:
        raise ValueError("no GPUs to assign runs to")
    if len(run_ids) > len(gpus) * runs_per_gpu:
        raise ValueError(
            f"{len(run_ids)} runs do not fit {len(gpus)} GPUs x {runs_per_gpu} runs per GPU"
        )
    return {run_id: gpus[k % len(gpus)] for k, run_id in enumerate(run_ids)}


def pick_gpu(load: Mapping[str, int], *, runs_per_gpu: int) -> str | None:
    """The least loaded GPU with room (the first of equals), or None when all are full.
    ``load``: runs now on each GPU, in the GPUs' order."""
    free = [(count, i, gpu) for i, (gpu, count) in enumerate(load.items()) if count < runs_per_gpu]
    return min(free)[2] if free else None


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them: its value
    when set, else the indices ``nvidia-smi -L`` lists (none without a driver)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("GPU ")]
    return [str(i) for i in range(len(lines))]
