"""The benchmark: benchmarks/gpu_check.sh in its CPU tiny mode (the GPU run's exact commands), and the
sentence-transformers comparison on the real offline model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nlsup_kit.benchmark_report import CACHED_AUGMENT, CACHED_HOST, SHIPPED_PIPELINE

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_cpu_in_tiny_mode(data_dir, tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, NLSUP_DATA=str(data_dir), GPU_CHECK_DIR=str(tmp_path / "check"),
               OUT=str(tmp_path / "out"))
    script = ROOT / "benchmarks" / "gpu_check.sh"
    for mode in ("--prepare", "--tiny"):
        done = subprocess.run(["bash", str(script), mode], env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [main] = json.loads((tmp_path / "out" / "bench.json").read_text())
    rows = {(r["step"], r["path"]): r for r in main["rows"]}
    assert set(rows) == {("text", "kit"), ("image", "kit"), ("text", "kit compiled"), ("image", "kit compiled"),
                         ("text", "sentence-transformers loop")}
    assert all(rows["text", path]["speedup_vs_st"] > 0 for path in ("kit", "kit compiled"))
    assert rows["image", "kit"]["speedup_vs_st"] is None  # the ST loop has no image step to compare with
    assert main["agreement"] and max(main["agreement"].values()) < 1e-3  # fp32 on the CPU
    assert main["environment"]["compile_backend"] == ">=0:aot_eager_decomp_partition"  # no C++ compile on a CPU
    assert main["epoch_steps"] == 1_000_000 // 8  # the paper's wiki1m at the tiny batch of 8
    assert main["eval_seconds"] > 0 and main["first_eval_seconds"] > 0 and main["projected_epoch_minutes"] > 0
    assert all(r["first_step_s"] > 0 for r in main["rows"])
    assert set(main["profiles"]) == {"text (kit)", "image (kit)", "text (kit compiled)", "image (kit compiled)"}
    assert all("Self CPU" in table for table in main["profiles"].values())
    [preferred] = json.loads((tmp_path / "out" / "attention-flash.json").read_text())
    assert preferred["environment"]["attention"] == "flash" and len(preferred["rows"]) == 2
    assert not (tmp_path / "out" / "double.json").exists()  # on a GPU only: the main command with another --set
    [class_mode] = json.loads((tmp_path / "out" / "class.json").read_text())
    assert {(r["step"], r["path"]) for r in class_mode["rows"]} == {
        ("text", "kit"), ("image", "kit"), ("text", "kit compiled"), ("image", "kit compiled")}
    [audio] = json.loads((tmp_path / "out" / "pipeline-audio.json").read_text())
    assert [(r["step"], r["path"]) for r in audio["rows"]] == [
        ("text", "kit"), ("audio", "kit"), ("text", "kit compiled"), ("audio", "kit compiled")]
    memory = json.loads((tmp_path / "out" / "memory.json").read_text())
    assert [m["recipe"] for m in memory] == ["sup-visualcse-bert-base", "audiocse-bert-base"]
    for side in ("image", "audio"):
        [made] = json.loads((tmp_path / "out" / f"pipeline-{side}.json").read_text())
        assert [(r["side"], r["path"]) for r in made["pipeline"]] == [
            (side, SHIPPED_PIPELINE), (side, CACHED_HOST), (side, CACHED_AUGMENT)]
        assert all(r["ms"] > 0 for r in made["pipeline"]) and made["pipeline"][1]["setup_s"] > 0
    [made] = json.loads((tmp_path / "out" / "pipeline-image.json").read_text())
    piece = made["training_slice"]  # 6 steps, the window after step 2: evaluations and saves at 3 and 6
    assert (piece["steps"], piece["window"], piece["evaluations"], piece["saves"]) == (6, [2, 6], 2, 2)
    assert piece["pipeline"] == "per-item" and piece["measured_seconds"] > 0 and piece["total_seconds"] > 0
    fastest = {}
    for row in made["rows"]:
        fastest[row["step"]] = min(fastest.get(row["step"], float("inf")), row["ms"])
    iteration = (sum(fastest.values()) + made["pipeline"][0]["ms"]) / 1e3  # a CPU: updates, then the batch
    assert piece["projected_seconds"] == pytest.approx(
        4 * iteration + 2 * made["eval_seconds"] + 2 * piece["save_seconds"])
    assert "| text | kit |" in (tmp_path / "out" / "bench.md").read_text()
    assert "FAILED" not in (tmp_path / "out" / "bench.md").read_text()


def test_speedup_is_the_loop_time_over_the_kit_time_in_the_table():
    """Written-out rows: the loop takes 30 ms, the kit 12 ms (2.5 times faster) and 40 ms (0.75)."""
    from nlsup_kit.benchmark_report import BenchReport, StepRow, add_speedups

    rows = [StepRow("text", "kit", 12.0, 5333.0), StepRow("text", "kit compiled", 40.0, 1600.0),
            StepRow("image", "kit", 20.0, 2400.0), StepRow("text", "sentence-transformers loop", 30.0, 2133.0)]
    add_speedups(rows)
    table = BenchReport("quick-simcse", "minilm-l6", "cpu", rows).table()
    assert "| text | kit | 12.0 | 5333 | 2.50 | - | - |" in table
    assert "| text | kit compiled | 40.0 | 1600 | 0.75 | - | - |" in table
    assert "| image | kit | 20.0 | 2400 | - | - | - |" in table
    assert "| text | sentence-transformers loop | 30.0 | 2133 | - | - | - |" in table


def test_the_projected_iteration_overlaps_batch_making_on_a_gpu_and_adds_it_on_a_cpu():
    """Written-out rows: updates of 30 + 20 ms; per-item batches take 80 ms, cached 4 ms on the host and 6 ms of
    augmentation on the device."""
    import torch

    from nlsup_kit.benchmark import projected_iteration
    from nlsup_kit.benchmark_report import BenchReport, PipelineRow, StepRow
    from nlsup_kit.recipes import apply_overrides, get_recipe

    rows = [StepRow("text", "kit", 40.0, 1.0), StepRow("text", "kit compiled", 30.0, 1.0),
            StepRow("image", "kit", 20.0, 1.0), StepRow("text", "sentence-transformers loop", 10.0, 1.0)]
    pipeline = [PipelineRow("image", SHIPPED_PIPELINE, 80.0, "cpu"), PipelineRow("image", CACHED_HOST, 4.0, "cpu"),
                PipelineRow("image", CACHED_AUGMENT, 6.0, "cuda")]
    report = BenchReport("visualcse-bert-base", "bert-base-uncased", "cuda", rows, pipeline=pipeline)
    auto = get_recipe("visualcse-bert-base")
    per_item = apply_overrides(auto, ["modality_pipeline=per-item"])
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    assert projected_iteration(report, auto, gpu)[0] == pytest.approx(0.056)  # max(30 + 20 + 6, 4)
    assert projected_iteration(report, per_item, gpu)[0] == pytest.approx(0.080)  # max(30 + 20, 80)
    assert projected_iteration(report, auto, cpu)[0] == pytest.approx(0.130)  # per-item on a CPU: 50 + 80
    assert projected_iteration(BenchReport("x", "y", "cpu", rows), auto, gpu)[0] == pytest.approx(0.050)
