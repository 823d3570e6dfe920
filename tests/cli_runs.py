"""Runs of the ``nlsup`` CLI in subprocesses for the interruption tests: the settings of a small CPU run, the
launchers (python, torchrun, the kill point), a run killed with every process it started, and the comparison of
two runs' weights and metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from nlsup_kit.checkpoint import STATE_FILE, read_metrics


def settings(model) -> list[str]:
    return [f"model={model}", "max_text_examples=400", "batch_size=8", "max_steps=40", "checkpoint_steps=5",
            "eval_steps=10", "log_steps=1", "modality_batch_size=4", "image_size=16", "patch_size=8",
            "learning_rate=1e-4", "modality_learning_rate=1e-4", "device=cpu"]


def command(model, data_dir, out, overrides=(), *flags) -> list[str]:
    """``nlsup train`` arguments, after a launcher (python, torchrun or the kill point); ``overrides`` are
    settings on top of :func:`settings`."""
    sets = [arg for s in [*settings(model), *overrides] for arg in ("--set", s)]
    return ["train", "--recipe", "quick-visualcse", *sets, "--data-dir", str(data_dir), "--output-dir", str(out),
            *flags]


SHORTER = ["max_steps=16", "checkpoint_steps=4", "eval_steps=8"]  # for two-process runs, slower to start
PYTHON = [sys.executable, "-m", "nlsup_kit.cli"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
            "nlsup_kit.cli"]
KILL_AT = [sys.executable, str(Path(__file__).with_name("killpoint.py"))]


def quiet_env() -> dict[str, str]:
    env = dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    return env


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=quiet_env(), capture_output=True, text=True, timeout=600)


def finish(launch, model, data_dir, out, overrides=(), *flags) -> Path:
    done = run([*launch, *command(model, data_dir, out, overrides, *flags)])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def weights(run) -> dict[str, torch.Tensor]:
    out = {}
    for folder in ("best", "checkpoint"):
        for file in ("model.safetensors", "head.safetensors", "modality.safetensors"):
            out.update({f"{folder}/{file}/{k}": v for k, v in load_file(str(run / folder / file)).items()})
    return out


def stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name: state, parent pid, ... (OSError once the process is gone)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (torchrun starts its workers in sessions of their own, so killing
    torchrun's process group would leave them running)."""
    children = {}
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            children.setdefault(int(stat_fields(folder.name)[1]), []).append(int(folder.name))
        except OSError:
            continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def alive(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def kill_after(launch: list[str], model, data_dir, out, kill_after_step: int, overrides=()) -> None:
    """A run SIGKILLed, with every process it started, once it has a checkpoint and has logged
    ``kill_after_step``."""
    process = subprocess.Popen([*launch, *command(model, data_dir, out, overrides)], env=quiet_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (out / "checkpoint" / STATE_FILE).is_file() and any(
                r["step"] >= kill_after_step for r in read_metrics(out)):
            break
        time.sleep(0.02)
    tree = process_tree(process.pid)
    for pid in tree:
        os.kill(pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL  # killed mid-run, not finished
    deadline = time.time() + 60
    while any(alive(pid) for pid in tree) and time.time() < deadline:
        time.sleep(0.1)
    assert not (out / "result.json").exists()


def kill_then_resume(launch: list[str], model, data_dir, out, kill_after_step: int, overrides=(),
                     resume_overrides=()) -> Path:
    """:func:`kill_after`, then resumed with ``resume_overrides`` on top of its settings."""
    kill_after(launch, model, data_dir, out, kill_after_step, overrides)
    return finish(launch, model, data_dir, out, [*overrides, *resume_overrides], "--resume")


def assert_same_run(reference, resumed) -> None:
    assert read_metrics(resumed) == read_metrics(reference)
    want, got = weights(reference), weights(resumed)
    assert got.keys() == want.keys()
    for key, tensor in want.items():
        assert torch.equal(got[key], tensor), key
    assert json.loads((resumed / "result.json").read_text())["best_stsb_dev"] == \
        json.loads((reference / "result.json").read_text())["best_stsb_dev"]
