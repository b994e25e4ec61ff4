#!/usr/bin/env bash
# Regenerate leaderboard/ from real runs on the embedded model (gemma3-270m, CPU), and its screenshot index.png:
#   bash leaderboard/regenerate.sh [RESULTS_DIR] [LIMIT]
# Every editor over the first LIMIT cases (default 5) of the three pair tasks with data, one batch per task;
# key statistics from text sampled from the model (offline); MEND with a checkpoint trained here first. Finished
# runs are reused (a rerun resumes or starts run_NNN+1), so the results directory can be kept between calls.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-results/leaderboard}
limit=${2:-5}
data=(--data-dir "${FLEXTAPE_DATA_DIR:-../shared/seesaw_cf}")
tasks=seesaw_cf_P19_P101,seesaw_cf_P27_P101,seesaw_cf_P21_P101  # the pair tasks report their edits' efficacy too
stats=(--hparams mom2_dataset=model --hparams mom2_n_samples=256 --hparams mom2_max_tokens=64)
for editor in none ft; do
    flextape-bench run --model gemma3-270m --editor "$editor" --tasks "$tasks" --limit "$limit" "${data[@]}" \
        --output "$results"
done
for editor in memit alphaedit rome; do
    flextape-bench run --model gemma3-270m --editor "$editor" --tasks "$tasks" --limit "$limit" "${data[@]}" \
        "${stats[@]}" --output "$results"
done
flextape-bench train-mend --model gemma3-270m "${data[@]}" --hparams steps=30
flextape-bench run --model gemma3-270m --editor mend --tasks "$tasks" --limit "$limit" "${data[@]}" --output "$results"
flextape-bench leaderboard --results "$results" --output leaderboard
# the top of the page (header, charts, first tables) as leaderboard/index.png, drawn by headless Chromium
python3 -m flextape_bench.leaderboard.screenshot leaderboard/index.html leaderboard/index.png
