"""Demographic labels of probes from Wikidata: gender (P21), race and geographic group (ethnic group P172 through the
upstream Seesaw-CF mapping tables) and continent (country of birthplace P19, else citizenship P27).

Modules, imported one way: `wikidata` (API requests and parsing) <- `cache` (SQLite) <- `tables` (mapping tables,
needs `wikidata` only) <- `prefetch` (fills the cache), `labels` (reads it).
The runner labels from the cache only (no network during a run); the command `flextape-bench demographics`
(`flextape_bench.cli.demographics`) fills it beforehand.
"""

from flextape_bench.demographics.labels import LabelSummary, label_task_cases

__all__ = ["LabelSummary", "label_task_cases"]
