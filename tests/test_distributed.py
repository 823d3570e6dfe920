"""Two gloo processes under torchrun, each with half the batch, get the loss and gradients of one process
with the whole batch: negatives come from the global batch and gradients are averaged exactly."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("distributed_worker.py")


def run(args: list[str], env: dict) -> None:
    """Run in its own process group, so a hung worker is killed with its launcher."""
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert process.returncode == 0, stderr[-3000:]


LOSSES = ("released-supcon", "supcon")


def test_two_processes_equal_one_with_the_whole_batch(tiny_model, data_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    args = [str(tiny_model), str(data_dir), str(tmp_path), ",".join(LOSSES)]
    run([sys.executable, str(WORKER), *args], env)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(WORKER), *args], env)
    for modality_loss in LOSSES:
        single = torch.load(tmp_path / modality_loss / "ranksingle.pt", weights_only=True)
        ranks = [torch.load(tmp_path / modality_loss / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
        assert int(single["world_size"]) == 1 and all(int(r["world_size"]) == 2 for r in ranks)
        assert single.keys() == ranks[0].keys() == ranks[1].keys()
        assert any(key.startswith("image/encoder.") for key in single)  # the image step reaches the shared layers
        for rank in ranks:
            for key, want in [(k, v) for k, v in single.items() if k != "world_size"]:
                torch.testing.assert_close(rank[key], want, rtol=1e-4, atol=1e-7, msg=f"{modality_loss}: {key}")
