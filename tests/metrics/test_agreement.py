"""Agreement statistics against hand-computed and published values; the annotation loader and its errors."""

import argparse
import csv
from pathlib import Path

import pytest

from flextape_bench.cli.agreement import add_parser, execute
from flextape_bench.errors import UserError
from flextape_bench.metrics.agreement import (
    ITEM_COLUMNS,
    agreement_table,
    cohen_kappa,
    coincidence_matrix,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    krippendorff_alpha,
    mean_pairwise_cohen,
    neutral_label,
    percent_all_agree,
    read_annotations,
)

N = None
ANNOTATIONS = Path(__file__).resolve().parents[2].parent / "shared" / "seesaw_cf" / "annotations"

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers x 12 units, with missing
# values; unit 12 has a single value and drops out (n = 40 pairable values). Published: nominal 0.743,
# ordinal 0.815, interval 0.849.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]

# 3 coders x 4 items, categories A/B, computed by hand:
#   items (A,A,A) (A,A,B) (B,B,B) (A,B,B); Fleiss: P_i = 1, 1/3, 1, 1/3 -> P_bar = 2/3; p_A = p_B = 6/12 -> P_e = 1/2;
#   kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
#   Coincidences: o_AA = 3 + 1 = 4, o_BB = 3 + 1 = 4, o_AB = o_BA = 1 + 1 = 2; n_A = n_B = 6, n = 12;
#   D_o = 4/12 = 1/3, D_e = 2*6*6 / (12*11) = 6/11; alpha = 1 - (1/3)/(6/11) = 7/18.
#   Cohen: (c1,c2) p_o = 3/4, p_e = (3*2 + 1*2)/16 = 1/2 -> 1/2; (c1,c3) p_o = 1/2, p_e = (3*1 + 1*3)/16 = 3/8 -> 1/5;
#   (c2,c3) p_o = 3/4, p_e = (2*1 + 2*3)/16 = 1/2 -> 1/2; mean = 2/5. All agree on items 1 and 3: 1/2.
SMALL = [list("AABA"), list("AABB"), list("ABBB")]


def test_krippendorff_2011_example():
    assert krippendorff_alpha(KRIPPENDORFF_2011) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(KRIPPENDORFF_2011, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(KRIPPENDORFF_2011, "interval") == pytest.approx(0.849, abs=5e-4)
    # the paper's coincidence-matrix marginals: n_1 = 9, n_2 = 13, n_3 = 10, n_4 = 5, n_5 = 3 (n = 40)
    marginals = {}
    for (c, _), o in coincidence_matrix(KRIPPENDORFF_2011).items():
        marginals[c] = marginals.get(c, 0) + o
    assert marginals == pytest.approx({1: 9, 2: 13, 3: 10, 4: 5, 5: 3})


def test_small_example_by_hand():
    assert krippendorff_alpha(SMALL) == pytest.approx(7 / 18)
    assert fleiss_kappa(SMALL) == pytest.approx(1 / 3)
    assert mean_pairwise_cohen(SMALL) == pytest.approx(2 / 5)
    assert percent_all_agree(SMALL) == pytest.approx(1 / 2)


def test_fleiss_wikipedia_table():
    # 10 subjects x 14 raters x 5 categories (the Wikipedia "Fleiss' kappa" worked example): P_bar = 0.378,
    # P_e = 0.213, kappa = 0.210.
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa_from_counts(counts) == pytest.approx(0.210, abs=5e-4)


def test_cohen_2x2_by_hand():
    # both yes 4, a yes/b no 2, a no/b yes 1, both no 3: p_o = 7/10; a yes 6/10, b yes 5/10;
    # p_e = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4
    a = [1] * 4 + [1] * 2 + [0] * 1 + [0] * 3
    b = [1] * 4 + [0] * 2 + [1] * 1 + [0] * 3
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # missing labels: the pair is dropped, whichever coder left it out
    assert cohen_kappa([*a, 1, N, N], [*b, N, 0, N]) == pytest.approx(0.4)


def test_alpha_two_coders_matches_scotts_pi_correction():
    # Independent route: with 2 coders and no missing values, alpha = 1 - (n-1)/n * (1 - pi), n = 2N pairable values,
    # pi = Scott's pi (pooled marginals). Same data as the Cohen example: A_o = 0.7, pooled yes = 11/20.
    a = [1] * 6 + [0] * 4
    b = [1] * 4 + [0] * 2 + [1] + [0] * 3
    p_yes = 11 / 20
    p_e = p_yes**2 + (1 - p_yes) ** 2
    pi = (0.7 - p_e) / (1 - p_e)
    assert krippendorff_alpha([a, b]) == pytest.approx(1 - 19 / 20 * (1 - pi))


def test_perfect_agreement():
    matrix = [[1, 2, 3, 1], [1, 2, 3, 1], [1, 2, 3, 1]]
    assert krippendorff_alpha(matrix) == 1.0
    assert fleiss_kappa(matrix) == pytest.approx(1.0)
    assert mean_pairwise_cohen(matrix) == pytest.approx(1.0)
    assert percent_all_agree(matrix) == 1.0


def test_single_category_is_undefined():
    # no variation: D_e = 0, P_e = 1, p_e = 1 -> None (undefined), although every coder agrees
    matrix = [["x"] * 5, ["x"] * 5, ["x", "x", N, "x", "x"]]
    assert krippendorff_alpha(matrix) is None
    assert fleiss_kappa(matrix) is None
    assert cohen_kappa(matrix[0], matrix[1]) is None
    assert mean_pairwise_cohen(matrix) is None
    assert percent_all_agree(matrix) == 1.0


def test_nothing_pairable():
    matrix = [[1, N, N], [N, 2, N]]
    assert krippendorff_alpha(matrix) is None
    assert fleiss_kappa(matrix) is None
    assert cohen_kappa(*matrix) is None
    assert percent_all_agree(matrix) is None
    assert krippendorff_alpha([]) is None


def test_missing_values():
    # Fleiss and all-agree use only complete units: adding units with a missing label changes nothing
    padded = [row + extra for row, extra in zip(SMALL, (["A", N], ["B", "A"], [N, "B"]))]
    assert fleiss_kappa(padded) == pytest.approx(1 / 3)
    assert percent_all_agree(padded) == pytest.approx(1 / 2)
    # alpha uses every pairable value: the extra units (A,B) and (A,B) add o_AB = o_BA = 2 -> n = 16, n_A = n_B = 8,
    # D_o = 8/16, D_e = 2*8*8/(16*15) = 8/15, alpha = 1 - (1/2)/(8/15) = 1/16
    assert krippendorff_alpha(padded) == pytest.approx(1 / 16)
    # a unit with a single label contributes nothing
    assert krippendorff_alpha([[*row, v] for row, v in zip(SMALL, ("A", N, N))]) == pytest.approx(7 / 18)


def test_pairwise_cohen_skips_undefined_pairs():
    # (c1,c2) both constant -> undefined; (c1,c3) and (c2,c3): p_o = 1/2, p_e = 1/2 -> 0
    matrix = [["a", "a"], ["a", "a"], ["a", "b"]]
    assert cohen_kappa(matrix[0], matrix[1]) is None
    assert mean_pairwise_cohen(matrix) == pytest.approx(0.0)


def test_bad_matrices():
    with pytest.raises(ValueError, match="differ in length"):
        krippendorff_alpha([[1, 2], [1]])
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa_from_counts([[1, 1], [2, 1]])
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha(SMALL, "ratio")
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha(SMALL, "interval")


# ---------------------------------------------------------------------------------------------------------- loader

HEADER = [*ITEM_COLUMNS, "Sexism", "Edit reflected?"]


def item(i: int, sexism: str = "", edit: str = "1", *, subj: str | None = None, pre: str | None = None) -> list[str]:
    return ["P21_P101", "physics", "art", subj or f"Person {i}", pre or f"pre {i}", f"post {i}", sexism, edit]


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def three(tmp_path):
    a = write(tmp_path / "a1.csv", [item(1, "2"), item(2, ""), item(3, "1.0"), item(4, " 2 ", "0")])
    b = write(tmp_path / "a2.csv", [item(1, "2"), item(2, "1.5"), item(3, "1"), item(4, "1.5", "0")])
    c = write(tmp_path / "a3.csv", [item(1, "2"), item(2, "1.5"), item(3, "NA"), item(4, "2", "")])
    return [a, b, c]


def test_read_annotations_row_order(three):
    data = read_annotations(three)
    assert list(data) == ["Sexism", "Edit reflected?"]
    assert data["Sexism"] == [["2", N, "1", "2"], ["2", "1.5", "1", "1.5"], ["2", "1.5", N, "2"]]
    assert data["Edit reflected?"] == [["1", "1", "1", "0"], ["1", "1", "1", "0"], ["1", "1", "1", N]]
    assert list(read_annotations(three, ["Edit reflected?"])) == ["Edit reflected?"]


def test_read_annotations_by_key_and_whitespace(tmp_path):
    a = write(tmp_path / "a.csv", [item(1, "1"), item(2, "2"), item(3, "1")])
    # reordered, and pre_text differing only in whitespace (as in the real files: a trailing newline)
    b = write(tmp_path / "b.csv", [item(3, "2"), item(1, "1", pre="pre  1\n"), item(2, "2")])
    assert read_annotations([a, b], ["Sexism"])["Sexism"] == [["1", "2", "1"], ["1", "2", "2"]]


def test_duplicate_keys_align_by_order_only(tmp_path):
    rows = [item(1, "1"), item(1, "2"), item(2, "1")]
    a = write(tmp_path / "a.csv", rows)
    b = write(tmp_path / "b.csv", rows)
    assert read_annotations([a, b])["Sexism"] == [["1", "2", "1"]] * 2
    c = write(tmp_path / "c.csv", [rows[2], rows[0], rows[1]])
    with pytest.raises(UserError, match=r"a\.csv: cannot align .* repeats data row 1"):
        read_annotations([a, c])


def test_blank_as(three):
    data = read_annotations(three, ["Sexism"], blank_as="1.50")
    assert data["Sexism"] == [["2", "1.5", "1", "2"], ["2", "1.5", "1", "1.5"], ["2", "1.5", "1.5", "2"]]
    blank_row = three[0].parent / "a4.csv"
    write(blank_row, [item(1, "2"), item(2, "", ""), item(3, "1"), item(4, "2")])
    assert read_annotations([three[0], blank_row], blank_as="1.5")["Sexism"][1] == ["2", N, "1", "2"]


def test_agreement_table(three):
    rows = {row["label"]: row for row in agreement_table(three)}
    sexism = rows["Sexism"]
    # complete items: 1 (2,2,2) and 4 (2,1.5,2); item 2 lacks a1, item 3 lacks a3
    assert sexism["n_items"] == 2 and sexism["n_missing"] == 2 and sexism["n_alpha"] == 4
    assert sexism["all_agree"] == pytest.approx(0.5)
    assert sexism["alpha"] == pytest.approx(krippendorff_alpha(read_annotations(three)["Sexism"]))
    assert rows["Edit reflected?"]["n_items"] == 3  # item 4 lacks a3; the three complete items are all "1"
    assert rows["Edit reflected?"]["fleiss"] is None and rows["Edit reflected?"]["all_agree"] == 1.0


@pytest.fixture
def skipped(tmp_path):
    """Two annotators; annotator 1 leaves item 2's Sexism blank and skips item 4 entirely."""
    a = write(tmp_path / "s1.csv", [item(1, "2", "1"), item(2, "", "1"), item(3, "1", "0"), item(4, "", "")])
    b = write(tmp_path / "s2.csv", [item(1, "2", "1"), item(2, "1.5", "1"), item(3, "1", "1"), item(4, "2", "1")])
    return [a, b]


def test_seed_missing_policy_by_hand(skipped):
    rows = {row["label"]: row for row in agreement_table(skipped, missing_policy="seed")}
    # Sexism labels 1, 1.5, 2 -> blanks read 1.5: a1 = 2, 1.5, 1, 1.5; a2 = 2, 1.5, 1, 2
    #   alpha: o_22 = 2, o_1.5,1.5 = 2, o_11 = 2, o_1.5,2 = o_2,1.5 = 1; n_2 = 3, n_1.5 = 3, n_1 = 2, n = 8;
    #     D_o = 2/8, D_e = 2 (3*3 + 3*2 + 3*2) / (8*7) = 42/56; alpha = 1 - (1/4) / (3/4) = 2/3
    #   Fleiss: P_i = 1, 1, 1, 0 -> P_bar = 3/4; p = 2/8, 3/8, 3/8 -> P_e = 22/64; (3/4 - 22/64) / (42/64) = 13/21
    #   Cohen: p_o = 3/4, p_e = (1*2 + 2*1 + 1*1) / 16 = 5/16 -> (12/16 - 5/16) / (11/16) = 7/11; all agree 3/4
    sexism = rows["Sexism"]
    assert (sexism["n_items"], sexism["n_alpha"], sexism["n_missing"]) == (4, 4, 2)
    assert sexism["alpha"] == pytest.approx(2 / 3) and sexism["fleiss"] == pytest.approx(13 / 21)
    assert sexism["mean_cohen"] == pytest.approx(7 / 11) and sexism["all_agree"] == pytest.approx(0.75)
    # Edit reflected? (0/1) -> the skipped row reads 0: a1 = 1, 1, 0, 0; a2 = 1, 1, 1, 1
    #   alpha: o_11 = 4, o_01 = o_10 = 2; n_1 = 6, n_0 = 2; D_o = 4/8, D_e = 2*6*2 / 56 = 3/7; alpha = 1 - 7/6
    #   Fleiss: P_bar = 1/2, P_e = (6/8)^2 + (2/8)^2 = 5/8 -> (1/2 - 5/8) / (3/8) = -1/3; Cohen: p_o = 1/2,
    #   p_e = (2*4 + 2*0) / 16 = 1/2 -> 0
    edit = rows["Edit reflected?"]
    assert (edit["n_items"], edit["n_missing"]) == (4, 1) and edit["alpha"] == pytest.approx(-1 / 6)
    assert edit["fleiss"] == pytest.approx(-1 / 3) and edit["mean_cohen"] == pytest.approx(0.0)
    assert edit["all_agree"] == pytest.approx(0.5)
    # the default drops what is missing: Sexism rests on items 1 and 3, where both agree
    dropped = {row["label"]: row for row in agreement_table(skipped)}["Sexism"]
    assert (dropped["n_items"], dropped["alpha"], dropped["fleiss"]) == (2, pytest.approx(1.0), pytest.approx(1.0))
    assert dropped["n_missing"] == 2


def test_neutral_label_is_the_middle_of_the_scale_or_0():
    assert neutral_label([["1", "2", N], ["1.5", N, "1"]], "Sexism") == "1.5"
    assert neutral_label([["0", "1"], [N, "1"]], "Edit reflected?") == "0"
    assert neutral_label([["1", "3"], ["2", N]], "score") == "2"  # 1..3: integral middle, one spelling
    assert neutral_label([["1", "1"], ["1", N]], "only ones") == "1"  # not a yes/no column: its range is [1, 1]
    with pytest.raises(UserError, match="column 'topic': --missing-policy seed needs numeric labels"):
        neutral_label([["A", "B"], [N, "A"]], "topic")
    with pytest.raises(UserError, match="column 'empty': no annotator gave a label"):
        neutral_label([[N, N], [N, N]], "empty")


def test_seed_policy_options(skipped, capsys):
    with pytest.raises(UserError, match="--blank-as works with --missing-policy drop only"):
        agreement_table(skipped, missing_policy="seed", blank_as="1.5")
    with pytest.raises(UserError, match="unknown missing policy 'zero'; known: drop, seed"):
        agreement_table(skipped, missing_policy="zero")
    assert execute(parse(["agreement", *map(str, skipped), "--missing-policy", "seed", "--columns", "Sexism"])) == 0
    out = capsys.readouterr().out
    assert "0.667" in out and "0.619" in out and "0.636" in out  # alpha, Fleiss, Cohen as above
    with pytest.raises(SystemExit):
        parse(["agreement", *map(str, skipped), "--missing-policy", "zero"])


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_error_missing_file(three, tmp_path):
    with pytest.raises(UserError) as exc:
        read_annotations([three[0], tmp_path / "nope.csv"])
    assert "nope.csv: no such annotation file" in one_line(exc)


def test_error_too_few_files(three):
    with pytest.raises(UserError, match="at least 2"):
        read_annotations(three[:1])


def test_error_missing_label_column(three, tmp_path):
    other = write(tmp_path / "short.csv", [row[:-1] for row in (item(1), item(2), item(3), item(4))], HEADER[:-1])
    with pytest.raises(UserError) as exc:
        read_annotations([three[0], other])
    assert "short.csv: missing label column 'Edit reflected?'" in one_line(exc)
    assert list(read_annotations([three[0], other], ["Sexism"])) == ["Sexism"]  # common columns still work


def test_error_extra_label_column(three, tmp_path):
    other = write(tmp_path / "wide.csv", [[*r, "1"] for r in (item(1), item(2), item(3), item(4))], [*HEADER, "Racism"])
    with pytest.raises(UserError) as exc:
        read_annotations([three[0], other])
    assert "wide.csv: label column 'Racism' is not in" in one_line(exc)


def test_error_unknown_selected_column(three):
    with pytest.raises(UserError) as exc:
        read_annotations(three, ["Sexsim"])
    assert "a1.csv: no label column 'Sexsim'" in one_line(exc) and "Sexism" in str(exc.value)
    with pytest.raises(UserError, match="'subj' is an item column"):
        read_annotations(three, ["subj"])


def test_error_missing_item_column(three, tmp_path):
    header = [h for h in HEADER if h != "subj"]
    other = write(
        tmp_path / "nosubj.csv", [[v for h, v in zip(HEADER, item(i)) if h != "subj"] for i in range(1, 5)], header
    )
    with pytest.raises(UserError) as exc:
        read_annotations([three[0], other])
    assert "nosubj.csv: missing item column 'subj'" in one_line(exc)


def test_error_unalignable(three, tmp_path):
    fewer = write(tmp_path / "fewer.csv", [item(1), item(2), item(3)])
    with pytest.raises(UserError) as exc:
        read_annotations([three[0], fewer])
    assert "fewer.csv: lacks the item of" in one_line(exc) and "'Person 4'" in str(exc.value)
    more = write(tmp_path / "more.csv", [item(i) for i in range(1, 6)])
    with pytest.raises(UserError) as exc:
        read_annotations([three[0], more])
    assert "more.csv: data row 5" in one_line(exc) and "is not in" in str(exc.value)


def test_no_item_columns_align_by_row_order(tmp_path):
    a = write(tmp_path / "a.csv", [["1", "x"], ["2", "y"]], ["q1", "q2"])
    b = write(tmp_path / "b.csv", [["1", "x"], ["1", "z"]], ["q1", "q2"])
    assert read_annotations([a, b]) == {"q1": [["1", "2"], ["1", "1"]], "q2": [["x", "y"], ["x", "z"]]}
    c = write(tmp_path / "c.csv", [["1", "x"]], ["q1", "q2"])
    with pytest.raises(UserError) as exc:
        read_annotations([a, c])
    assert "c.csv: 1 rows but" in one_line(exc) and "no item columns" in str(exc.value)


def test_error_bad_csv(three, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match=r"empty.csv: empty file"):
        read_annotations([three[0], empty])
    ragged = write(tmp_path / "ragged.csv", [item(1), [*item(2), "extra"], item(3), item(4)])
    with pytest.raises(UserError, match=r"ragged.csv line 3: more fields"):
        read_annotations([three[0], ragged])
    latin = tmp_path / "latin.csv"
    latin.write_bytes("props,x\nca\xf1a,1\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin.csv: not UTF-8"):
        read_annotations([three[0], latin])


# ------------------------------------------------------------------------------------------------------------- CLI


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="flextape-bench")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_run(three, capsys):
    assert execute(parse(["agreement", *map(str, three), "--columns", "Sexism", "--format", "github"])) == 0
    out = capsys.readouterr().out
    assert out.startswith("| label") and "| Sexism" in out and "Edit reflected?" not in out
    assert execute(parse(["agreement", *map(str, three)])) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "Edit reflected?" in out and "n/a" in out  # Fleiss undefined for Edit reflected?
    with pytest.raises(UserError, match="at least 2"):
        execute(parse(["agreement", str(three[0])]))
    with pytest.raises(UserError, match="--columns names no column"):
        execute(parse(["agreement", *map(str, three), "--columns", ","]))


# ------------------------------------------------------------------------------------------------------- real data

LABELS = [
    "Anglo-centrism",
    "Sexism",
    "Religious Injection",
    "Xenophobia",
    "Classism",
    "Racism",
    "Injection of Conservatism",
    "Edit reflected?",
]


@pytest.mark.skipif(
    not all((ANNOTATIONS / f"a{i}.csv").is_file() for i in (1, 2, 3)),
    reason=f"Seesaw-CF annotations not found at {ANNOTATIONS}",
)
def test_real_annotations():
    paths = [ANNOTATIONS / f"a{i}.csv" for i in (1, 2, 3)]
    data = read_annotations(paths)
    assert list(data) == LABELS
    for label, matrix in data.items():
        assert len(matrix) == 3 and all(len(coder) == 300 for coder in matrix), label
        allowed = {"0", "1", N} if label == "Edit reflected?" else {"1", "1.5", "2", N}
        assert {v for coder in matrix for v in coder} <= allowed, label
    filled_with = {label: neutral_label(matrix, label) for label, matrix in data.items()}
    assert filled_with == {label: "0" if label == "Edit reflected?" else "1.5" for label in LABELS}  # as upstream
    seed = {row["label"]: row for row in agreement_table(paths, missing_policy="seed")}
    assert all(row["n_items"] == row["n_alpha"] == 300 for row in seed.values())
    assert seed["Sexism"]["n_missing"] == 243 and seed["Edit reflected?"]["n_missing"] == 15
    rows = agreement_table(paths)
    assert [row["label"] for row in rows] == LABELS
    for row in rows:
        assert 0 < row["n_items"] <= row["n_alpha"] <= 300
        for key in ("alpha", "fleiss", "mean_cohen"):
            assert row[key] is None or -1 <= row[key] <= 1, (row["label"], key)
        assert 0 <= row["all_agree"] <= 1
