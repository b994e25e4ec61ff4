"""`models.local_config`: a model's config from disk, before (and without) loading, converting or downloading it."""

import pytest
from transformers import GPT2Config

from flextape_bench import models


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_local_directory(cache, tmp_path):
    GPT2Config(n_layer=5).save_pretrained(tmp_path / "gpt2")
    config = models.local_config(str(tmp_path / "gpt2"))
    assert (config.model_type, config.num_hidden_layers) == ("gpt2", 5)


def test_embedded_model_once_converted_and_not_before(cache, monkeypatch):
    """Before its conversion the embedded model has no config on disk: nothing is converted to find one."""
    monkeypatch.setattr(models.embedded, "_convert_gguf", lambda *args: pytest.fail("converted"))
    assert models.local_config("gemma3-270m") is None
    GPT2Config(n_layer=7).save_pretrained(cache / "models" / "gemma3-270m")
    assert models.local_config("gemma3-270m").num_hidden_layers == 7


@pytest.mark.parametrize("name", ["owner/not-downloaded", "/no/such/model", "gemma3-27m"])
def test_none_where_only_loading_could_find_it(cache, name):
    assert models.local_config(name) is None
