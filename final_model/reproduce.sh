#!/usr/bin/env bash
# How final_model/ was made and measured, command by command (run from the repo root with
# ../shared/data beside the repo). Every number in card.json and MODEL_CARD.md comes from here.
set -euo pipefail
RUN=${RUN:-runs/fast/stage2}
EVAL=(python -m liveaffect evaluate --no-progress)

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
    # The progressive recipe from random weights (about 2 hours on 2 CPU cores): stage 1 at
    # 32x32, then 48x48, then stage 2 with CK+ AUs and video degradations, its last stage
    # widened 256 -> 384 channels; see the script's header. Writes runs/fast/.
    bash final_model/train_progressive.sh
fi
rm -rf final_model.new && mkdir final_model.new
cp "$RUN"/bundle/* final_model.new/
cp "$RUN"/log.csv final_model.new/training_log.csv
cp "$RUN"/curves.png final_model.new/training_curves.png
# each stage's wall time, where the recipe wrote them (train_progressive.sh: runs/fast/times.log)
if [ -f "$(dirname "$RUN")"/times.log ]; then cp "$(dirname "$RUN")"/times.log final_model.new/training_times.log; fi
M=final_model.new
CK=../shared/data/ckplus_au/labels.csv

# 1. AU decision thresholds, tuned on the CK+ validation subjects (saved into the card).
"${EVAL[@]}" --model $M --data $CK --split all --group-by subject \
    --holdout 0.3:35:holdout_val --tune-au-thresholds --save-to-card \
    --json $M/eval_ckplus_val.json --report $M/eval_ckplus_val.md
# 2. AUs and expressions (incl. Other = contempt) on CK+ test subjects never trained on;
#    their per-AU F1 also goes into the card's au_f1 (the live view marks AUs under 0.5 "?").
"${EVAL[@]}" --model $M --data $CK --split all --group-by subject \
    --holdout 0.3:35:holdout_test --save-to-card --save-au-f1 \
    --json $M/eval_ckplus_test.json --report $M/eval_ckplus_test.md
# 3. FER2013 PublicTest, clean and four degraded copies (blur, lowres, noise, dark).
"${EVAL[@]}" --model $M --data ../shared/data/fer2013/test --degrade all --save-to-card \
    --json $M/eval_fer2013_test.json --report $M/eval_fer2013_test.md
# 4. Valence/arousal on the DiffusionFER hold-out (synthetic faces).
"${EVAL[@]}" --model $M --data ../shared/data/diffusionfer/labels.csv --split all \
    --holdout 0.2:0 --save-to-card \
    --json $M/eval_diffusionfer_holdout.json --report $M/eval_diffusionfer_holdout.md
# 5. The same three test sets through the int8 engine (--engine tflite-int8: int8 weights,
#    activations quantised per face at run time), as the app shows them with that engine; the
#    card keeps these under keys ending in "engine tflite-int8". AU thresholds: the card's.
for args in "--data ../shared/data/fer2013/test --degrade all" \
    "--data $CK --split all --group-by subject --holdout 0.3:35:holdout_test" \
    "--data ../shared/data/diffusionfer/labels.csv --split all --holdout 0.2:0"; do
    # shellcheck disable=SC2086
    "${EVAL[@]}" --model $M $args --engine tflite-int8 --save-to-card
done
echo "measured bundle in final_model.new/ (copy MODEL_CARD.md and this script over, then swap)"
