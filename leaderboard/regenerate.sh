#!/usr/bin/env bash
# Regenerate leaderboard/ from real runs of both embedded models on the CPU, in resumable pieces:
#   bash leaderboard/regenerate.sh [RESULTS_DIR] [LIMIT] [PIECES]
# The grid: models gemma3-270m and smollm2-135m; editors none, ft, memit, alphaedit, rome and mend; the pair tasks
# with data; the first LIMIT cases (default 50) of each task, the same cases for every model and editor, each case
# edited alone on the unedited model (--num-edits 1, the harness default, as the seed's reference: each case is its
# own sample for the intervals and tests). A piece is one model, editor and task ("model/editor/task"; PIECES: a
# grep -E pattern choosing some, default all). A finished piece's run record (its config, summary and timing, without
# the cases) is kept in RECORDS (env FLEXTAPE_RECORDS, default leaderboard/records, committed with the leaderboard),
# with the marker RECORDS/done/<model>__<editor>__<task>, and the piece is skipped from then on, on this machine or
# any other with the same RECORDS; an interrupted piece resumes its run under RESULTS_DIR (the runner keeps scores
# 8 cases at a time). Another call of this script at the same time takes the pieces this one does not hold (a lock
# per piece), so one call per core finishes the grid sooner (set OMP_NUM_THREADS=1 for each). Key statistics come
# from 256 texts sampled from the model (offline); MEND trains its checkpoint first (piece "model/mend/train", kept
# in this machine's cache, so marked under RESULTS_DIR/done). At the end of a call, the tables, page and screenshot
# are made from the runs and the records of the tasks whose pieces are all done (every task once the grid is).
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-results/leaderboard}
limit=${2:-50}
pieces=${3:-.}
records=${FLEXTAPE_RECORDS:-leaderboard/records}
data=(--data-dir "${FLEXTAPE_DATA_DIR:-../shared/seesaw_cf}")
models=(gemma3-270m smollm2-135m)
editors=(none ft memit alphaedit rome mend)
# the pair tasks with data (they report their edits' efficacy, so the _eff tasks with the same cases are not run),
# the gender edits first
tasks=(seesaw_cf_P21_P101 seesaw_cf_P19_P101 seesaw_cf_P27_P101 seesaw_cf_P19_P21 seesaw_cf_P27_P19)
stats=(--hparams mom2_dataset=model --hparams mom2_n_samples=256 --hparams mom2_max_tokens=64)
mkdir -p "$results/done" "$results/locks" "$records/done"

# Run piece $1 (model/editor/task) with the command after it, unless it is done (its marker in folder $2), not chosen
# or held by another call; a run piece then keeps its run's record.
piece() {
    local name=$1 marker="$2/${1//\//__}"
    shift 2
    [[ -e $marker ]] && return 0
    grep -qE -- "$pieces" <<<"$name" || return 0
    exec {lock}>"$results/locks/${name//\//__}"
    if ! flock -n "$lock"; then
        echo "regenerate: $name is being run by another call; skipped" >&2
        exec {lock}>&-
        return 0
    fi
    if [[ ! -e $marker ]]; then
        echo "regenerate: $name" >&2
        "$@"
        if [[ $2 == run ]]; then
            python3 -m flextape_bench.leaderboard.run_records "$results" "$records"
        fi
        touch "$marker"
    fi
    exec {lock}>&-
}

# task by task, so that a grid stopped half-way has whole tasks: every model and editor on the same cases
for task in "${tasks[@]}"; do
    for model in "${models[@]}"; do
        for editor in "${editors[@]}"; do
            extra=()
            case $editor in
                memit | alphaedit | rome) extra=("${stats[@]}") ;;
                mend)  # trained on this machine when a MEND piece of this task is still to run here
                    [[ -e $records/done/${model}__mend__$task ]] ||
                        piece "$model/mend/train" "$results/done" flextape-bench train-mend --model "$model" "${data[@]}" ;;
            esac
            piece "$model/$editor/$task" "$records/done" flextape-bench run --model "$model" --editor "$editor" --tasks "$task" \
                --limit "$limit" --num-edits 1 "${data[@]}" "${extra[@]}" --output "$results"
        done
    done
done

# the tables of the whole tasks (every model and editor done), all of them once the grid is finished
whole=()
for task in "${tasks[@]}"; do
    missing=0
    for model in "${models[@]}"; do
        for editor in "${editors[@]}"; do
            [[ -e $records/done/${model}__${editor}__$task ]] || missing=1
        done
    done
    (( missing )) || whole+=("$task")
done
remaining=$(( ${#models[@]} * ${#editors[@]} * ${#tasks[@]} - $(find "$records/done" -type f | wc -l) ))
only=()
if (( remaining > 0 )); then
    echo "regenerate: $remaining pieces still to run (or running elsewhere); call again to go on" >&2
    (( ${#whole[@]} )) || exit 0
    only=(--tasks "$(IFS=,; echo "${whole[*]}")")
    echo "regenerate: the tables show the tasks every model and editor has finished: ${whole[*]}" >&2
fi
exec {board}>"$results/locks/leaderboard"  # one call writes the tables at a time
flock "$board"
flextape-bench leaderboard --results "$results" --records "$records" "${only[@]}" --output leaderboard
# the top of the page (header, charts, first tables) as leaderboard/index.png, drawn by headless Chromium
python3 -m flextape_bench.leaderboard.screenshot leaderboard/index.html leaderboard/index.png
