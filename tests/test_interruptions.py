"""What machines do to a run. A stop signal (a scheduler's SIGTERM, Ctrl-C's or Jupyter's SIGINT) finishes the
update, writes a checkpoint and exits with the shell's status; a disk that fills at a save stops with one line
and keeps the last good save; a run folder that cannot be written is refused before any work. Every stopped
run, resumed, ends exactly as the uninterrupted reference run (``conftest.reference``)."""

import os
import re
import shlex
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from cli_runs import (KILL_AT, PYTHON, SHORTER, TORCHRUN, assert_same_run, command, finish, process_tree, quiet_env,
                      run, settings)
from nlsup_kit.checkpoint import STATE_FILE, read_metrics, verify
from nlsup_kit.errors import NlsupError
from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.stopping import StopRequest
from nlsup_kit.trainer import train

ONLY_AT_THE_END = ["checkpoint_steps=100"]  # so the checkpoint a stop leaves is the one the stop wrote


def wait_for_step(out: Path, step: int, process: subprocess.Popen | None = None) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and (process is None or process.poll() is None):
        try:
            if any(r["step"] >= step for r in read_metrics(out)):
                return
        except NlsupError:  # not written yet, or a line caught halfway
            pass
        time.sleep(0.02)
    raise AssertionError(f"the run never logged step {step}")


def stop_line(output: str, signal_name: str, total: int) -> re.Match:
    lines = [line for line in output.splitlines() if line.startswith("stopped by")]
    assert len(lines) == 1, output[-3000:]  # one line, from one process
    found = re.fullmatch(rf"stopped by {signal_name} at step (\d+) of {total}: checkpoint in (\S+); continue with "
                         r"(`nlsup train .* --resume`|train\(\.\.\., resume=True\).*)", lines[0])
    assert found, lines[0]
    return found


def checkpoint_step(out: Path) -> int:
    verify(out / "checkpoint", "test")  # whole: every file as its manifest lists it
    return torch.load(out / "checkpoint" / STATE_FILE, weights_only=True)["position"]["step"]


def test_sigterm_checkpoints_after_the_update_and_the_printed_command_resumes_exactly(reference, tiny_model,
                                                                                     data_dir, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([*PYTHON, *command(tiny_model, data_dir, out, ONLY_AT_THE_END)], env=quiet_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_step(out, 7, process)
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, errors[-3000:]
    found = stop_line(errors, "SIGTERM", 40)
    step = int(found[1])
    assert 7 <= step < 40 and Path(found[2]) == out / "checkpoint" and checkpoint_step(out) == step
    assert max(r["step"] for r in read_metrics(out)) == step and not list(out.glob("*.tmp"))
    assert not (out / "result.json").exists()
    again = shlex.split(found[3].strip("`"))
    assert again[0] == "nlsup" and "--resume" in again
    resumed = run([*PYTHON, *again[1:]])
    assert resumed.returncode == 0 and "best STS-B dev" in resumed.stdout, resumed.stderr[-3000:]
    assert_same_run(reference, out)


def worker(launcher: int, rank: int) -> int:
    """The pid of torchrun's worker of ``rank`` (its environment says RANK)."""
    for pid in process_tree(launcher):
        try:
            if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return pid
        except OSError:
            continue
    raise AssertionError(f"no worker of rank {rank} under {launcher}")


def test_sigterm_to_one_torchrun_process_stops_both_after_the_same_update(torchrun_reference, tiny_model, data_dir,
                                                                         tmp_path):
    """The signal reaches rank 1 alone (torchrun itself passes one to every process, 30 s before it kills them,
    but they receive it at different moments): the processes agree on the step, and both stop after it."""
    out = tmp_path / "run"
    process = subprocess.Popen([*TORCHRUN, *command(tiny_model, data_dir, out, [*SHORTER, *ONLY_AT_THE_END])],
                               env=quiet_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_step(out, 4, process)
    os.kill(worker(process.pid, 1), signal.SIGTERM)
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0, output[-3000:]  # a scheduler sees a job that did not finish
    step = int(stop_line(output, "SIGTERM", 16)[1])
    assert checkpoint_step(out) == step < 16
    assert len(torch.load(out / "checkpoint" / STATE_FILE, weights_only=True)["ranks"]) == 2
    assert_same_run(torchrun_reference, finish(TORCHRUN, tiny_model, data_dir, out, SHORTER, "--resume"))


def test_a_notebook_interrupt_ends_the_cell_in_one_line_and_running_it_again_continues(reference, tiny_model,
                                                                                      data_dir, tmp_path):
    from jupyter_client.manager import start_new_kernel

    out = tmp_path / "run"
    cell = (f"from nlsup_kit.recipes import apply_overrides, get_recipe\nfrom nlsup_kit.trainer import train\n"
            f"recipe = apply_overrides(get_recipe('quick-visualcse'), {[*settings(tiny_model), *ONLY_AT_THE_END]!r})\n"
            f"run = train(recipe, {str(out)!r}, {str(data_dir)!r}, reuse=True)\nprint('finished', run.steps)")
    manager, client = start_new_kernel(kernel_name="python3", env=quiet_env())
    try:
        def execute(interrupt_at: int | None = None) -> tuple[dict, list[dict]]:
            sent = client.execute(cell)
            if interrupt_at is not None:
                wait_for_step(out, interrupt_at)
                manager.interrupt_kernel()  # what Jupyter's stop button sends: SIGINT
            reply = client.get_shell_msg(timeout=300)
            assert reply["parent_header"]["msg_id"] == sent
            shown = []
            while (message := client.get_iopub_msg(timeout=60))["msg_type"] != "status" or \
                    message["content"]["execution_state"] != "idle":
                if message["parent_header"].get("msg_id") == sent and message["msg_type"] in ("error", "stream"):
                    shown.append(message["content"])
            return reply["content"], shown

        reply, shown = execute(interrupt_at=7)
        assert reply["status"] == "error" and reply["ename"] == "Stopped"
        error = next(m for m in shown if "traceback" in m)
        assert len(error["traceback"]) == 1  # the line, not a KeyboardInterrupt traceback
        step = int(stop_line(error["traceback"][0].removeprefix("Stopped: "), "SIGINT", 40)[1])
        assert checkpoint_step(out) == step < 40
        reply, shown = execute()
        assert reply["status"] == "ok", shown
        assert any("finished 40" in m.get("text", "") for m in shown)
    finally:
        manager.shutdown_kernel(now=True)
    assert_same_run(reference, out)


def test_signals_while_training_are_noted_not_acted_on_and_the_old_handlers_come_back():
    before = signal.getsignal(signal.SIGINT)
    stop = StopRequest()
    with stop.listening():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # a second, impatient signal: counted, the save goes on
        assert (stop.signum, stop.repeats, stop.agreed()) == (signal.SIGTERM, 1, signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is before and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_image_loader_processes_outlive_a_signal_to_the_process_group(data_dir):
    """Ctrl-C and schedulers signal every process of the job: the loader's must go on serving batches."""
    from nlsup_kit.data.batches import modality_loader

    recipe = apply_overrides(get_recipe("quick-visualcse"), ["modality_batch_size=4", "num_workers=1"])
    batches = iter(modality_loader(recipe, data_dir))
    next(batches)
    for worker in batches._workers:
        os.kill(worker.pid, signal.SIGTERM)
        os.kill(worker.pid, signal.SIGINT)
    time.sleep(0.5)
    assert all(worker.is_alive() for worker in batches._workers)
    assert len(next(batches)[0]) == 4


@contextmanager
def tmpfs(folder: Path, kilobytes: int, read_only: bool = False):
    """A file system of ``kilobytes`` at ``folder``, as small disks and read-only mounts are in real machines."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs, which needs root (CI runs as root)", pytrace=False)
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={kilobytes}k" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_disk_that_fills_before_or_during_a_save_stops_in_one_line_and_the_resume_continues(reference, tiny_model,
                                                                                             data_dir, tmp_path):
    """The disk fills as the save of step 10 (the second checkpoint/) begins; freed, the resumed run reaches that
    save again and the disk fills halfway through it (after the weights, at the training state, which torch.save
    reports in words of its own); freed again, the run resumes to the end."""
    with tmpfs(tmp_path / "disk", 48 * 1024) as disk:
        out, filler = disk / "run", disk / "filler"
        where = re.escape(str(out))
        for target, nth, flags in (("nlsup_kit/checkpoint.py:save_atomically=checkpoint", 2, ()),
                                   ("torch/serialization.py:save", 1, ("--resume",))):
            stopped = run([*KILL_AT, "--fill", str(filler), target, str(nth), *command(tiny_model, data_dir, out),
                           *flags])
            assert stopped.returncode == 2, stopped.stderr[-3000:]
            assert re.fullmatch(rf"error: no space left on {where}: [\d.]+ MB needed, [\d.]+ MB free; free some "
                                rf"space, or choose an --output-dir on a disk you can write to; checkpoint/ of step 10 "
                                rf"was not written; the last good checkpoint, of step 5, is whole in {where}/checkpoint: "
                                rf"continue from it with --resume once there is room",
                                stopped.stderr.strip().splitlines()[-1])
            assert checkpoint_step(out) == 5 and not list(out.glob("*.tmp"))
            filler.unlink()
        assert_same_run(reference, finish(PYTHON, tiny_model, data_dir, out, (), "--resume"))


def test_a_save_short_of_space_writes_nothing_and_one_that_fills_the_disk_leaves_no_tmp(tmp_path):
    """The check before a save (the previous save's size) and the one line when a writer fills the disk anyway."""
    from nlsup_kit.checkpoint import save_atomically
    from nlsup_kit.data.disk import DiskProblem

    with tmpfs(tmp_path / "disk", 2048) as disk:
        save_atomically(disk / "save", lambda folder: (folder / "weights").write_bytes(bytes(700_000)))
        written = []
        with pytest.raises(DiskProblem, match=rf"^no space left on {re.escape(str(disk))}: 1\.7 MB needed, 1\.3 MB free"):
            save_atomically(disk / "save", written.append)  # 700 kB x 1.02 + 1 MB, beside the first save
        assert written == [] and not (disk / "save.tmp").exists()
        with pytest.raises(DiskProblem, match=rf"^no space left on {re.escape(str(disk))}: "):
            save_atomically(disk / "other", lambda folder: (folder / "big").write_bytes(bytes(3_000_000)))
        assert not (disk / "other.tmp").exists() and (disk / "save" / "weights").stat().st_size == 700_000


def test_a_run_folder_that_cannot_be_written_is_refused_before_the_model_loads(data_dir, tmp_path):
    """No model at the path given: a refusal that names the folder came before the model was looked for."""
    recipe = apply_overrides(get_recipe("quick-simcse"), [f"model={tmp_path / 'no-model-here'}", "device=cpu"])
    with tmpfs(tmp_path / "read-only", 1024, read_only=True) as read_only:
        with pytest.raises(NlsupError, match=rf"^{re.escape(str(read_only))}/run: read-only file system; choose an --output-dir"):
            train(recipe, read_only / "run", data_dir, progress=False)
    with tmpfs(tmp_path / "full", 512) as full:
        with pytest.raises(NlsupError, match=rf"^no space left on {re.escape(str(full))}/run: 1\.0 MB needed, 0\.5 MB free"):
            train(recipe, full / "run", data_dir, progress=False)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(NlsupError, match=rf"^{re.escape(str(tmp_path))}/a-file: exists and is not a folder; choose an"):
        train(recipe, tmp_path / "a-file", data_dir, progress=False)
    with pytest.raises(NlsupError, match="no-model-here"):  # and with a folder that can be written, the model
        train(recipe, tmp_path / "run", data_dir, progress=False)


def test_a_disk_too_small_for_the_runs_saves_is_refused_before_the_first_step(tiny_model, data_dir, tmp_path):
    recipe = apply_overrides(get_recipe("quick-visualcse"), settings(tiny_model))
    with tmpfs(tmp_path / "disk", 2 * 1024) as disk:
        with pytest.raises(NlsupError, match=rf"^{re.escape(str(disk))}/run: this run's saves need [\d.]+ MB more \(best/ [\d.]+ MB, "
                                             r"checkpoint/ [\d.]+ MB, and each new checkpoint beside the previous "
                                             r"one\), [\d.]+ MB free; free some space, or choose an --output-dir"):
            train(recipe, disk / "run", data_dir, progress=False)
        assert (disk / "run" / "metrics.jsonl").read_text() == ""  # not one step trained
