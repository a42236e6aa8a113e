#!/usr/bin/env bash
# How the 2026-12-07 Zen 5 runs were measured (MODEL_CARD.md, "Robust first, then a clean-leaning tail"):
# reproduce.sh's commands 1-3 on a copy of RUN_DIR/bundle, paired against final_model.
# usage, from the repo root: bash bench/results/curriculum_evalcand.sh RUN_DIR NAME  -> runs/eval/NAME_{ckplus_val,ckplus_test,fer2013}.json
set -euo pipefail
RUN=$1; NAME=$2
B=/tmp/cand/$NAME; rm -rf "$B"; mkdir -p "$B" runs/eval; cp "$RUN"/bundle/* "$B"/
EVAL=(python -m liveaffect evaluate --no-progress)
CK=../shared/data/ckplus_au/labels.csv
"${EVAL[@]}" --model $B --data $CK --split all --group-by subject --holdout 0.3:35:holdout_val \
    --tune-au-thresholds --save-to-card --json runs/eval/${NAME}_ckplus_val.json
"${EVAL[@]}" --model $B --data $CK --split all --group-by subject --holdout 0.3:35:holdout_test \
    --save-to-card --save-au-f1 --baseline final_model --bootstrap 1000 --json runs/eval/${NAME}_ckplus_test.json
"${EVAL[@]}" --model $B --data ../shared/data/fer2013/test --degrade all --save-to-card \
    --baseline final_model --bootstrap 1000 --json runs/eval/${NAME}_fer2013.json
python - "$NAME" <<'PY'
import json, sys
n = sys.argv[1]
f = json.load(open(f"runs/eval/{n}_fer2013.json"))
t = json.load(open(f"runs/eval/{n}_ckplus_test.json"))
v = json.load(open(f"runs/eval/{n}_ckplus_val.json"))
print(n, "FER acc/mF1", round(f["expr"]["accuracy"], 4), round(f["expr"]["macro_f1"], 4))
c = f["comparison"]["metrics"]
print(" paired acc", {k: round(c["expr_accuracy"][k], 4) for k in ("value", "low", "high")},
      "mF1", {k: round(c["expr_macro_f1"][k], 4) for k in ("value", "low", "high")})
r = f["robustness"]
print(" copies", {k: (round(x["accuracy_drop"], 4), round(x["prediction_share"]["max_ratio"], 3), x["prediction_share"]["max_ratio_class"], round(x["prediction_share"]["predicted"].get("Other", 0) if isinstance(x["prediction_share"]["predicted"], dict) else -1, 4)) for k, x in r["copies"].items()})
print(" clean share", r["clean"]["max_ratio"], r["clean"]["max_ratio_class"], r["clean"]["predicted"])
print(" CK test AU F1", round(t["au"]["mean_f1"], 4), "val tuned", round(v["au"]["mean_f1"], 4), "CK test expr acc", round(t["expr"]["accuracy"], 4))
print(" paired AU", {k: round(t["comparison"]["metrics"]["au_mean_f1"][k], 4) for k in ("value", "low", "high")})
PY
