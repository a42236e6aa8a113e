# Sourced by the from-scratch recipes (train_from_scratch.sh, train_progressive.sh), after they
# set OUT. `stage NAME CONFIG`: one `liveaffect train` run into $OUT/NAME (per-epoch
# checkpoints; started again, it resumes), its start, end and wall time appended to
# $OUT/times.log.
stage() {
    local name=$1 config=$2 start
    start=$(date +%s)
    echo "$name start $(date -u +%FT%TZ)" | tee -a "$OUT/times.log"
    python -m liveaffect train --config "$config" --out "$OUT/$name" --quiet
    echo "$name end $(date -u +%FT%TZ) seconds $(($(date +%s) - start))" | tee -a "$OUT/times.log"
}
