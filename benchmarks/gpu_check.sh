#!/usr/bin/env bash
# The prepared GPU check for the `device` tool, about 8 minutes of device time (projected: 422 s measured on an
# H200 before, less three sections moved behind GPU_CHECK_EXTRA=1, plus batch making and the training slice):
# paper-shape step timings (kit eager, kit compiled, the experimental whole-update graphs, the
# sentence-transformers loop), fast path vs HF forward in bf16, STS-B dev evaluations, the projected VisualCSE
# epoch; the image and audio batches made by the shipped and the cached pipelines beside the steps, from
# stand-in JPEG/FLAC folders written on the machine, and 300 VisualCSE iterations through the trainer by the
# clock beside their projection; the notebooks' class mode compiled. With GPU_CHECK_EXTRA=1 also the image
# step preferring each attention kernel and at twice the micro-batch, and the peak memory of every paper recipe
# (measured on both GPUs already). Models are built from their architectures with random weights (no downloads;
# speed does not depend on the weights).
#
#   here, first:   bash benchmarks/gpu_check.sh --prepare   # STS data + a vocabulary into build/gpu-check
#                  bash benchmarks/gpu_check.sh --wheels    # what the device image lacks, as Python 3.12 wheels:
#                  soundfile, cffi, pycparser (audio), kornia, kornia-rs (the cached pipeline's augmentation)
#   on the GPU:    device run: carry ["build/gpu-check"], timeout_s 560, command
#                  "pip install -q --no-index --no-deps --target /tmp/site build/gpu-check/wheels/*.whl &&
#                  PYTHONPATH=/tmp/site bash benchmarks/gpu_check.sh". It took 422 s on an H200 (with the
#                  whole-update graphs failing; 225 s on an H100 with the sections of then), before the
#                  batch-making sections.
#   on any CPU:    bash benchmarks/gpu_check.sh --tiny      # the same steps on tiny shapes (tests/ runs this;
#                  compiled without inductor's CPU code generation, see below)
#
# Writes bench.md (all output) and a JSON file per section into $OUT (the device tool's folder) or
# build/gpu-check/out.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${GPU_CHECK_DIR:-build/gpu-check}  # where --prepare puts the data and vocabulary
MODE=${1:-gpu}
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_DISABLE=1 HF_HUB_OFFLINE=1

if [ "$MODE" = --prepare ]; then
  DATA=${NLSUP_DATA:-../shared/data}
  [ -d "$DATA/senteval" ] || { echo "error: no SentEval data under $DATA (set NLSUP_DATA)" >&2; exit 2; }
  rm -rf "$ROOT" && mkdir -p "$ROOT/data" "$ROOT/tiny"
  cp -r "$DATA/senteval" "$DATA/wiki" "$ROOT/data/"
  "$PY" - "$ROOT" <<'PYTHON'
import sys
from transformers import AutoTokenizer, BertConfig
from nlsup_kit.models import load_pretrained
root = sys.argv[1]
load_pretrained(AutoTokenizer, "minilm-l6").save_pretrained(f"{root}/tokenizer")
BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128).save_pretrained(f"{root}/tiny")
PYTHON
  echo "prepared $ROOT ($(du -sh "$ROOT" | cut -f1))"
  exit 0
fi
if [ "$MODE" = --wheels ]; then
  rm -rf "$ROOT/wheels"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 \
    -d "$ROOT/wheels" soundfile cffi pycparser kornia kornia-rs
  ls "$ROOT/wheels"
  exit 0
fi
[ -d "$ROOT/tokenizer" ] || { echo "error: $ROOT/tokenizer missing; run: bash benchmarks/gpu_check.sh --prepare" >&2; exit 2; }
OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
# stand-in image and audio folders of the real kinds (Imagenette-style JPEGs, LibriSpeech-style 12 s FLACs),
# written here on the machine that reads them: nothing to download or carry
STAND_INS=$ROOT/stand-ins
if [ "$MODE" = --tiny ]; then COUNTS="2 8 2 4 1.0"; else COUNTS="10 200 10 30 12.0"; fi
"$PY" - "$STAND_INS" $COUNTS <<'PYTHON'
import sys, time
from pathlib import Path
from nlsup_kit.data.stand_ins import write_clips, write_images
root, classes, per_class, speakers, per_speaker, seconds = sys.argv[1:]
start = time.perf_counter()
images = write_images(Path(root, "images"), int(classes), int(per_class))
clips = write_clips(Path(root, "clips"), int(speakers), int(per_speaker), float(seconds))
print(f"stand-ins: {images} JPEGs, {clips} FLAC clips of {seconds} s in {root} ({time.perf_counter() - start:.0f} s)")
PYTHON
COMMON=(--random-init --tokenizer "$ROOT/tokenizer" --data-dir "$ROOT/data")
PAPER=simcse-bert-base,simcse-roberta-base,simcse-roberta-large,visualcse-bert-base,visualcse-roberta-base,audiocse-bert-base,audiocse-roberta-base,sup-simcse-bert-base,sup-visualcse-bert-base,sup-audiocse-bert-base
if [ "$MODE" = --tiny ]; then
  # tiny shapes on the CPU: the same commands, seconds instead of minutes. Compiled steps go through dynamo,
  # AOTAutograd, inductor's decompositions and its partitioner (the parts a GPU compile shares with a CPU one),
  # not inductor's C++ code generation, which a GPU never runs (it generates Triton): that took 90 of 135 s.
  export TORCH_COMPILE_OVERRIDE_BACKENDS=">=0:aot_eager_decomp_partition"
  SHAPES=(--set "model=$ROOT/tiny" --set device=cpu --set max_text_examples=256 --set batch_size=8
          --set modality_batch_size=4 --set image_size=32 --set patch_size=16 --set audio_frames=64
          --set audio_mel_bins=32 --set audio_patch_size=16 --set eval_steps=125)
  STEPS=(--steps 2 --warmup 1)
  SLICE=(--slice 6 --set log_steps=1 --set checkpoint_steps=3 --set eval_steps=3)
  MAIN=visualcse-bert-base
  PAPER=sup-visualcse-bert-base,audiocse-bert-base
  CLASS=class-visualcse
  DOUBLE=
  KERNELS=flash
  EXTRA=1  # every kind of section, so each command is tested (one attention kernel: the other is the same command;
           # the double micro-batch is the main command with another --set: both skipped on the CPU)
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  SHAPES=()
  STEPS=(--steps 30 --warmup 10)
  SLICE=(--slice 300)  # the recipe's own log, evaluation and checkpoint steps (25, 125, 250)
  MAIN=visualcse-bert-base
  CLASS=class-visualcse,class-audiocse
  DOUBLE=96
  KERNELS="flash efficient"
  EXTRA=${GPU_CHECK_EXTRA:-0}  # 1: also the attention kernels, the double micro-batch and every recipe's memory
fi
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.version.cuda)"

# each section runs even if one before it failed, so one device call shows everything that works
section() { echo; echo "## $1"; shift; "$@" || echo "FAILED (exit $?): $*"; }
bench() { "$PY" -m nlsup_kit.cli bench "${COMMON[@]}" "${SHAPES[@]}" "$@"; }
{
  section "Step timings (paper shapes: text batch 64 x length 32, images 48 x 197 tokens; bf16 on CUDA)" \
    bench --recipe "$MAIN" "${STEPS[@]}" --compile --whole-update-graphs --profile --json "$OUT/bench.json"
  section "Batch making beside the steps, and a training slice by the clock (stand-in JPEGs)" \
    bench --recipe "$MAIN" "${STEPS[@]}" --compile --no-st --pipeline "${SLICE[@]}" \
    --set modality_data="$STAND_INS/images" --json "$OUT/pipeline-image.json"
  section "The notebooks' class mode (compiled, as on a GPU by default)" \
    bench --recipe "$CLASS" "${STEPS[@]}" --compile --no-st --no-eval --json "$OUT/class.json"
  section "Audio step and audio batch making (stand-in FLACs)" \
    bench --recipe audiocse-bert-base "${STEPS[@]}" --compile --no-st --no-eval --pipeline \
    --set modality_data="$STAND_INS/clips" --json "$OUT/pipeline-audio.json"
  if [ "$EXTRA" = 1 ]; then  # measured on both GPUs already (benchmarks/RESULTS.md): only when asked
    for kernel in $KERNELS; do
      section "Attention kernel: $kernel preferred (eager steps; the main run's eager rows are PyTorch's choice)" \
        bench --recipe "$MAIN" "${STEPS[@]}" --attention "$kernel" --no-st --no-eval --json "$OUT/attention-$kernel.json"
    done
    if [ -n "$DOUBLE" ]; then
      section "A larger image micro-batch (eager): twice the paper's" \
        bench --recipe "$MAIN" "${STEPS[@]}" --set modality_batch_size="$DOUBLE" --no-st --no-eval --json "$OUT/double.json"
    fi
    section "Peak memory of the paper recipes (eager kit step; text and image/audio updates)" \
      bench --recipe "$PAPER" --set max_text_examples=4096 --steps 2 --warmup 1 --no-st --no-eval \
      --json "$OUT/memory.json"
  fi
} 2>&1 | tee "$OUT/bench.md"
