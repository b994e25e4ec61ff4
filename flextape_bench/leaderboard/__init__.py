"""`flextape-bench leaderboard`: the finished runs under a results root as one comparison.

Modules, imported one way: `collect` (finds finished runs, picks the newest run per model, editor and task) <-
`tables` (leaderboard, model, run and detail tables with every column's legend; markdown, CSV, LaTeX), `plots`
(the per-task gender charts, and group shifts before and after, with 95% intervals; PNG and SVG) <- `page` (one
self-contained HTML file) <- `write` (all of them, with each run's config.json, to a folder). `screenshot` draws
the page in headless Chromium into a PNG. `hub` builds and pushes a Hugging Face dataset folder of the runs. The
command is `flextape_bench.cli.leaderboard`.
"""
