import pytest

from flextape_bench.editors.ft import FTHparams
from flextape_bench.editors.hparams import check_overrides, load_hparams, parse_overrides
from flextape_bench.errors import UserError


def test_overrides_are_parsed_as_yaml_and_applied():
    overrides = parse_overrides(["layers=[3, 4]", "lr=1e-3"])
    assert overrides == {"layers": [3, 4], "lr": 1e-3}
    hparams = load_hparams("ft", FTHparams, "gptj", overrides)
    assert hparams.layers == [3, 4] and hparams.lr == 1e-3 and hparams.num_steps == 25


def test_bad_override_names_the_flag_and_valid_keys():
    with pytest.raises(UserError, match=r"--hparams: unknown key\(s\) lrate .*valid: layers, lr"):
        check_overrides("ft", FTHparams, {"lrate": 1})
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_overrides(["lr"])


def test_missing_family_file_is_a_user_error():
    with pytest.raises(UserError, match="no hyperparameters for model family 'qwen'"):
        load_hparams("ft", FTHparams, "qwen", {})
