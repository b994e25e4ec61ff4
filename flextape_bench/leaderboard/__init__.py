"""`flextape-bench leaderboard`: the finished runs under a results root as one comparison.

Modules, imported one way: `collect` (finds finished runs, picks the newest run per model, editor and task) <-
`tables` (leaderboard and detail tables; markdown, CSV, LaTeX), `plots` (group shifts before and after, with 95%
intervals; PNG and SVG) <- `page` (one self-contained HTML file) <- `write` (all of them to a folder). `hub` builds
and pushes a Hugging Face dataset folder of the runs. The command is `flextape_bench.cli.leaderboard`.
"""
