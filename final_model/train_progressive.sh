#!/usr/bin/env bash
# How the default model (final_model/) was trained from random weights, in under 2 hours on
# 2 CPU cores, one command (run from the repo root with ../shared/data beside it). Three
# `liveaffect train` runs, each writing per-epoch checkpoints into its run folder and resuming
# from them if started again; each stage's wall time goes to $OUT/times.log.
#   stage 1a  configs/fast_stage1a.yaml  FER2013 + DiffusionFER at 32x32, 40 epochs
#   stage 1b  configs/fast_stage1b.yaml  the same at 48x48, 34 epochs, from stage 1a
#   stage 2   configs/fast_stage2.yaml   configs/default_model.yaml's stage 2 (CK+ AUs,
#             degradations, four views) plus weak AU labels on half of FER2013's faces
#             (weak_au: 0.5), from stage 1b, its last stage widened 256 -> 384
#             by train.init_from (liveaffect/model/widen.py)
#   bash final_model/train_progressive.sh             # runs/fast/{stage1a,stage1b,stage2}
# Measured for the default (2026-12-05, alone on 2 AMD EPYC Zen 4 cores): 1,892 + 3,504 +
# 1,473 s = 114.5 min (final_model/training_times.log). final_model/reproduce.sh runs this
# script, then measures the result.
set -euo pipefail
OUT=runs/fast  # the configs' train.init_from name these run folders
mkdir -p "$OUT"
# shellcheck source=final_model/stages.sh
source "$(dirname "$0")/stages.sh"
stage stage1a configs/fast_stage1a.yaml
stage stage1b configs/fast_stage1b.yaml
stage stage2 configs/fast_stage2.yaml
