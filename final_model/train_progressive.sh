#!/usr/bin/env bash
# The 2-hour recipe: the default model's architecture from random weights, one command (run
# from the repo root with ../shared/data beside the repo). Three `liveaffect train` runs, each
# writing per-epoch checkpoints into its run folder and resuming from them if started again;
# each stage's wall time goes to $OUT/times.log.
#   stage 1a  configs/fast_stage1a.yaml  FER2013 + DiffusionFER at 32x32, 40 epochs
#   stage 1b  configs/fast_stage1b.yaml  the same at 48x48, 24 epochs, from stage 1a
#   stage 2   configs/fast_stage2.yaml   configs/default_model.yaml's stage 2 (CK+ AUs,
#             degradations, four views) from stage 1b, its last stage widened 256 -> 384
#             by train.init_from (liveaffect/model/widen.py)
#   bash final_model/train_progressive.sh             # runs/fast/{stage1a,stage1b,stage2}
# Then measure the result as final_model/ was measured:
#   SKIP_TRAIN=1 RUN=runs/fast/stage2 bash final_model/reproduce.sh
set -euo pipefail
OUT=runs/fast  # the configs' train.init_from name these run folders
mkdir -p "$OUT"
# shellcheck source=final_model/stages.sh
source "$(dirname "$0")/stages.sh"
stage stage1a configs/fast_stage1a.yaml
stage stage1b configs/fast_stage1b.yaml
stage stage2 configs/fast_stage2.yaml
