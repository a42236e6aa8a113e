#!/usr/bin/env bash
# The previous default model's two stages from random weights, one command (run from the repo root
# with ../shared/data beside the repo). Each stage writes per-epoch checkpoints into its run
# folder and resumes from them if started again. Times go to $OUT/times.log.
# Stage 1 here is compressed to 48 epochs (the shipped model's had 76) to fit 2 hours: on
# 2026-12-04 both stages took 119.5 min on a 2-core Zen 4, but the model was weaker than
# the default of that day (FER2013 0.647 / 0.617, CK+ test AU F1 0.568; MODEL_CARD.md, "How
# it was trained"), so final_model/ is not this run. (That default's successor, the
# 2026-12-04 default, was stage 1 widened, then configs/default_model.yaml; final_model/ is
# now the 2-hour progressive recipe's model: final_model/train_progressive.sh, then
# final_model/reproduce.sh.)
#   bash final_model/train_from_scratch.sh            # runs/scratch2h/{stage1,stage2}
# Then measure the result as final_model/ was measured:
#   SKIP_TRAIN=1 RUN=runs/scratch2h/stage2 bash final_model/reproduce.sh
set -euo pipefail
OUT=${OUT:-runs/scratch2h}
mkdir -p "$OUT"
# shellcheck source=final_model/stages.sh
source "$(dirname "$0")/stages.sh"
stage stage1 configs/scratch2h_stage1.yaml
stage stage2 configs/scratch2h_stage2.yaml
