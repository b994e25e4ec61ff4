"""Inter-annotator agreement on the long-form labels: Krippendorff's alpha, Fleiss' kappa, mean pairwise Cohen's
kappa and the share of items where all annotators agree, and the loader (the command: `flextape_bench.cli.agreement`).

Matrices are coders x units (one row per annotator, one column per item), `None` for a missing label. Alpha uses
every pairable label (units with fewer than 2 labels drop out); Fleiss, Cohen and the all-agree share use only the
items every relevant annotator labelled (missing policy `drop`, the default). Missing policy `seed` reproduces the
upstream agreement script instead: every missing label counts as the column's neutral value (`neutral_label`). A
statistic that is undefined (no items, or no variation to measure agreement against: all labels in one category) is
`None`. Formulas and policies: docs/metrics.md.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from flextape_bench.errors import UserError

Label = Hashable
Matrix = Sequence[Sequence[Label | None]]

# Columns that identify an item (the edit and the texts annotated); every other column is a label column.
ITEM_COLUMNS = ("props", "target_true", "target_new", "subj", "pre_text", "post_text")
# Cell values read as "no label" (compared after stripping whitespace, case-insensitively).
MISSING_VALUES = frozenset({"", "na", "n/a", "nan"})
LEVELS = ("nominal", "ordinal", "interval")
MISSING_POLICIES = ("drop", "seed")


# --------------------------------------------------------------------------------------------------------- statistics


def _check_matrix(matrix: Matrix) -> int:
    """Number of units; ValueError unless every coder row has that many."""
    lengths = {len(row) for row in matrix}
    if len(lengths) > 1:
        raise ValueError(f"coder rows differ in length: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _sort_key(value: Label) -> tuple:
    try:
        return (0, float(value), "")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def coincidence_matrix(matrix: Matrix) -> dict[tuple[Label, Label], float]:
    """Krippendorff's o_ck: each unit with m_u >= 2 labels adds (pairs of c,k in the unit) / (m_u - 1)."""
    _check_matrix(matrix)
    coincidences: dict[tuple[Label, Label], float] = {}
    for unit in zip(*matrix):
        counts = Counter(value for value in unit if value is not None)
        m_u = sum(counts.values())
        if m_u < 2:
            continue
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                if pairs:
                    coincidences[c, k] = coincidences.get((c, k), 0.0) + pairs / (m_u - 1)
    return coincidences


def _deltas(categories: list[Label], marginals: dict[Label, float], level: str) -> dict[tuple[Label, Label], float]:
    """Squared distance between every two categories under the level's metric."""
    if level == "nominal":
        return {(c, k): float(c != k) for c in categories for k in categories}
    if level == "interval":
        try:
            values = {c: float(c) for c in categories}  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"interval alpha needs numeric labels, got {categories}") from None
        return {(c, k): (values[c] - values[k]) ** 2 for c in categories for k in categories}
    if level == "ordinal":
        ranked = sorted(categories, key=_sort_key)
        deltas = {}
        for i, c in enumerate(ranked):
            for j, k in enumerate(ranked):
                lo, hi = min(i, j), max(i, j)
                between = sum(marginals[g] for g in ranked[lo : hi + 1])
                deltas[c, k] = (between - (marginals[c] + marginals[k]) / 2) ** 2
        return deltas
    raise ValueError(f"unknown level {level!r}; known levels: {', '.join(LEVELS)}")


def krippendorff_alpha(matrix: Matrix, level: str = "nominal") -> float | None:
    """Krippendorff's alpha = 1 - D_o / D_e from the coincidence matrix; None for missing labels.

    Units with fewer than 2 labels drop out. `level`: nominal (delta = 1 if c != k), ordinal (ranks of the sorted
    categories, weighted by their marginals) or interval (delta = (c - k)^2, numeric labels). Returns None when
    fewer than 2 pairable labels remain or D_e = 0 (every pairable label in one category).
    """
    coincidences = coincidence_matrix(matrix)
    marginals: dict[Label, float] = {}
    for (c, _), o in coincidences.items():
        marginals[c] = marginals.get(c, 0.0) + o
    n = sum(marginals.values())
    if n < 2:
        return None
    categories = list(marginals)
    delta = _deltas(categories, marginals, level)
    observed = sum(o * delta[ck] for ck, o in coincidences.items()) / n
    expected = sum(marginals[c] * marginals[k] * delta[c, k] for c in categories for k in categories) / (n * (n - 1))
    if expected <= 0:
        return None
    return 1.0 - observed / expected


def complete_units(matrix: Matrix) -> list[tuple[Label, ...]]:
    """The units (as tuples of every coder's label) that no coder left missing."""
    _check_matrix(matrix)
    return [unit for unit in zip(*matrix) if all(value is not None for value in unit)]


def fleiss_kappa_from_counts(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of how many raters chose each category.

    Every item needs the same number of raters n >= 2. kappa = (P_bar - P_e) / (1 - P_e); None for no items or
    P_e = 1 (every rating in one category).
    """
    if not counts:
        return None
    raters = {sum(row) for row in counts}
    if len(raters) != 1:
        raise ValueError(f"every item needs the same number of ratings, got {sorted(raters)}")
    n = raters.pop()
    if n < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 ratings per item, got {n}")
    n_items = len(counts)
    p_bar = sum((sum(x * x for x in row) - n) / (n * (n - 1)) for row in counts) / n_items
    n_categories = max(len(row) for row in counts)
    shares = [sum(row[j] for row in counts if j < len(row)) / (n_items * n) for j in range(n_categories)]
    p_e = sum(p * p for p in shares)
    if math.isclose(p_e, 1.0):
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_kappa(matrix: Matrix) -> float | None:
    """Fleiss' kappa over the units every coder labelled (others are skipped); None if none or undefined."""
    units = complete_units(matrix)
    categories = sorted({value for unit in units for value in unit}, key=_sort_key)
    counts = [[Counter(unit)[c] for c in categories] for unit in units]
    return fleiss_kappa_from_counts(counts)


def cohen_kappa(a: Sequence[Label | None], b: Sequence[Label | None]) -> float | None:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e) over the items both coders labelled; None if none or p_e = 1."""
    if len(a) != len(b):
        raise ValueError(f"coders differ in length: {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return None
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    left, right = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    p_e = sum(left[c] * right[c] for c in left) / (n * n)
    if math.isclose(p_e, 1.0):
        return None
    return (p_o - p_e) / (1.0 - p_e)


def mean_pairwise_cohen(matrix: Matrix) -> float | None:
    """Mean of Cohen's kappa over every pair of coders (each pair on the items both labelled).

    Pairs whose kappa is undefined are left out of the mean; None if no pair is defined.
    """
    _check_matrix(matrix)
    kappas = [cohen_kappa(a, b) for a, b in itertools.combinations(matrix, 2)]
    defined = [k for k in kappas if k is not None]
    return sum(defined) / len(defined) if defined else None


def percent_all_agree(matrix: Matrix) -> float | None:
    """Share (0..1, not percent) of the units every coder labelled on which all coders gave the same label."""
    units = complete_units(matrix)
    if not units:
        return None
    return sum(len(set(unit)) == 1 for unit in units) / len(units)


# ------------------------------------------------------------------------------------------------------------ loading


def _canonical(value: str | None) -> str | None:
    """A cell as a label: None if missing; numbers in one spelling ("1.0", " 1" -> "1"; "1.50" -> "1.5")."""
    if value is None:
        return None
    value = value.strip()
    if value.lower() in MISSING_VALUES:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    return str(int(number)) if number.is_integer() else repr(number)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str | None]]]:
    if not path.exists():
        raise UserError(f"{path}: no such annotation file; pass one CSV per annotator")
    if not path.is_file():
        raise UserError(f"{path}: not a file; pass one CSV per annotator")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path}: empty file; expected a header row with the item and label columns")
            header = [name.strip() for name in header]
            duplicates = sorted({name for name in header if name and header.count(name) > 1})
            if duplicates:
                raise UserError(f"{path}: column {duplicates[0]!r} appears more than once in the header; rename it")
            rows = []
            for record in reader:
                if not any(field.strip() for field in record):
                    continue  # blank line
                if len(record) > len(header) and any(field.strip() for field in record[len(header) :]):
                    raise UserError(
                        f"{path} line {reader.line_num}: more fields than the header has columns; "
                        f"check the quoting of that row"
                    )
                rows.append({name: (record[i] if i < len(record) else None) for i, name in enumerate(header) if name})
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise UserError(f"{path}: malformed CSV ({exc}); fix the file") from None
    return [name for name in header if name], rows


def _describe(row: Mapping[str, str | None], number: int) -> str:
    parts = [f"{c}={(row.get(c) or '')[:40]!r}" for c in ("props", "subj", "target_new") if c in row]
    return f"data row {number}" + (f" ({', '.join(parts)})" if parts else "")


def _align(paths: list[Path], tables: list[list[dict[str, str | None]]], id_columns: list[str]) -> list[list[int]]:
    """For each file, the row index of every item, in the first file's order (see docs/metrics.md)."""
    keys = [[tuple(" ".join((row[c] or "").split()) for c in id_columns) for row in rows] for rows in tables]
    first = keys[0]
    if all(len(k) == len(first) and k == first for k in keys[1:]):
        return [list(range(len(first)))] * len(keys)  # same items in the same order
    if not id_columns:
        odd = next(p for p, k in zip(paths, keys) if len(k) != len(first))
        raise UserError(
            f"{odd}: {len(keys[paths.index(odd)])} rows but {paths[0]} has {len(first)}, and there are no "
            f"item columns ({', '.join(ITEM_COLUMNS)}) to match rows by; give every file the same rows"
        )
    orders = []
    for path, rows, file_keys in zip(paths, tables, keys):
        where: dict[tuple, int] = {}
        for i, key in enumerate(file_keys):
            if key in where:
                raise UserError(
                    f"{path}: cannot align with {paths[0]}: rows differ in order or number and "
                    f"{_describe(rows[i], i + 1)} repeats data row {where[key] + 1} in "
                    f"({', '.join(id_columns)}); list the same items in the same order in every file"
                )
            where[key] = i
        missing = [i for i, key in enumerate(first) if key not in where]
        if missing:
            raise UserError(
                f"{path}: lacks the item of {paths[0]} {_describe(tables[0][missing[0]], missing[0] + 1)} "
                f"({len(missing)} such items); every file must label the same items"
            )
        if len(file_keys) != len(first):
            known = set(first)
            extra = next(i for i, key in enumerate(file_keys) if key not in known)
            raise UserError(
                f"{path}: {_describe(rows[extra], extra + 1)} is not in {paths[0]}; every file must label "
                f"the same items"
            )
        orders.append([where[key] for key in first])
    return orders


def read_annotations(
    paths: Sequence[str | Path], columns: Sequence[str] | None = None, *, blank_as: str | None = None
) -> dict[str, list[list[str | None]]]:
    """Per label column, the coders x items matrix of labels (None = missing), items aligned across the files.

    One CSV per annotator: the item columns present among ITEM_COLUMNS, then label columns (all other columns, or
    `columns`). Rows are aligned by row order when every file has the same item keys in the same order, else by
    the item key (unique in each file). `blank_as` fills missing labels with that value in the rows where the
    annotator gave at least one label (wholly unlabelled rows stay missing). Raises UserError for a missing file,
    a missing or mismatched column, or files that cannot be aligned.
    """
    files = [Path(p) for p in paths]
    if len(files) < 2:
        raise UserError(f"agreement needs at least 2 annotation files (one per annotator), got {len(files)}")
    read = [_read_csv(path) for path in files]
    header0 = read[0][0]
    id_columns = [c for c in ITEM_COLUMNS if c in header0]
    labels0 = [c for c in header0 if c not in ITEM_COLUMNS]
    for path, (header, _) in zip(files[1:], read[1:]):
        for c in id_columns:
            if c not in header:
                raise UserError(
                    f"{path}: missing item column {c!r} (present in {files[0]}); every file needs the same item columns"
                )
    if columns is None:
        if not labels0:
            raise UserError(
                f"{files[0]}: no label columns besides the item columns ({', '.join(ITEM_COLUMNS)}); "
                f"add one column per label"
            )
        for path, (header, _) in zip(files[1:], read[1:]):
            labels = [c for c in header if c not in ITEM_COLUMNS]
            for c in labels0:
                if c not in labels:
                    raise UserError(
                        f"{path}: missing label column {c!r} (present in {files[0]}); add it or pick "
                        f"common columns with --columns"
                    )
            for c in labels:
                if c not in labels0:
                    raise UserError(
                        f"{path}: label column {c!r} is not in {files[0]}; add it there or pick common "
                        f"columns with --columns"
                    )
        selected = labels0
    else:
        selected = list(dict.fromkeys(c.strip() for c in columns))
        if not selected:
            raise UserError("no label columns selected; name at least one with --columns")
        for path, (header, _) in zip(files, read):
            for c in selected:
                if c in ITEM_COLUMNS:
                    raise UserError(
                        f"{c!r} is an item column, not a label column; label columns of {files[0]}: "
                        f"{', '.join(labels0)}"
                    )
                if c not in header:
                    labels = [h for h in header if h not in ITEM_COLUMNS]
                    raise UserError(f"{path}: no label column {c!r}; its label columns are: {', '.join(labels)}")
    orders = _align(files, [rows for _, rows in read], id_columns)
    fill = _canonical(blank_as) if blank_as is not None else None
    result: dict[str, list[list[str | None]]] = {c: [] for c in selected}
    for (header, rows), order in zip(read, orders):
        all_labels = [c for c in header if c not in ITEM_COLUMNS]
        cells = [{c: _canonical(row[c]) for c in all_labels} for row in rows]
        if fill is not None:
            for row in cells:
                if any(v is not None for v in row.values()):
                    for c in selected:
                        if row[c] is None:
                            row[c] = fill
        for c in selected:
            result[c].append([cells[i][c] for i in order])
    return result


def neutral_label(matrix: Matrix, column: str) -> str:
    """The label the `seed` policy gives a missing cell of `column`, from the labels of every coder: 0 in a yes/no
    column (labels exactly 0 and 1, like "Edit reflected?"), else the middle of the numeric labels' range (1.5 on a
    1 / 1.5 / 2 scale). UserError if a label is not a number or the column has none."""
    labels = {value for coder in matrix for value in coder if value is not None}
    try:
        numbers = sorted(float(value) for value in labels)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(
            f"column {column!r}: --missing-policy seed needs numeric labels to find the middle of the "
            f"scale, got {sorted(map(str, labels))}; use --missing-policy drop"
        ) from None
    if not numbers:
        raise UserError(
            f"column {column!r}: no annotator gave a label, so there is no scale to fill missing labels "
            f"from; leave the column out with --columns"
        )
    if labels == {"0", "1"}:
        return "0"
    return cast(str, _canonical(repr((numbers[0] + numbers[-1]) / 2)))  # a finite number: never None


def filled(matrix: Matrix, value: Label) -> list[list[Label]]:
    """The matrix with every missing label replaced by `value`."""
    return [[value if v is None else v for v in coder] for coder in matrix]


def agreement_table(
    paths: Sequence[str | Path],
    columns: Sequence[str] | None = None,
    *,
    level: str = "nominal",
    blank_as: str | None = None,
    missing_policy: str = "drop",
) -> list[dict[str, Any]]:
    """One row per label column: label, n_items (items every annotator labelled: Fleiss, Cohen, all-agree),
    alpha and n_alpha (items with >= 2 labels), fleiss, mean_cohen, all_agree (share), n_missing (missing cells;
    with `missing_policy="seed"` the cells it filled with the column's `neutral_label`)."""
    if level not in LEVELS:
        raise UserError(f"unknown level {level!r}; known levels: {', '.join(LEVELS)}")
    if missing_policy not in MISSING_POLICIES:
        raise UserError(f"unknown missing policy {missing_policy!r}; known: {', '.join(MISSING_POLICIES)}")
    if missing_policy == "seed" and blank_as is not None:
        raise UserError("--blank-as works with --missing-policy drop only; seed fills every missing label itself")
    rows = []
    matrix: Matrix
    for label, matrix in read_annotations(paths, columns, blank_as=blank_as).items():
        n_missing = sum(v is None for coder in matrix for v in coder)
        if missing_policy == "seed":
            matrix = filled(matrix, neutral_label(matrix, label))
        complete = [list(unit) for unit in complete_units(matrix)]
        complete_matrix = [list(coder) for coder in zip(*complete)] if complete else [[] for _ in matrix]
        try:
            alpha = krippendorff_alpha(matrix, level)
        except ValueError as exc:
            raise UserError(f"column {label!r}: {exc}; use --level nominal") from None
        rows.append(
            {
                "label": label,
                "n_items": len(complete),
                "alpha": alpha,
                "n_alpha": sum(sum(v is not None for v in unit) >= 2 for unit in zip(*matrix)),
                "fleiss": fleiss_kappa(complete_matrix),
                "mean_cohen": mean_pairwise_cohen(complete_matrix),
                "all_agree": percent_all_agree(complete_matrix),
                "n_missing": n_missing,
            }
        )
    return rows
