"""Key statistics: the exact second moment over the corpus's tokens, cached per layer and corpus, reused."""

import pytest
import torch

from flextape_bench.editors.covariance import Statistics, corpus_identity, corpus_texts
from flextape_bench.editors.hooks import capture
from flextape_bench.errors import UserError


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(
        "Marie Waldron was born in New York City.\n\nThe mother tongue of Danielle Darrieux is French.\n\n"
        "Judith Matloff was born in Paris and works as a journalist."
    )
    return path


def test_second_moment_equals_direct_computation_and_is_cached(tiny, tmp_path, corpus, monkeypatch):
    stats = Statistics(tiny, tmp_path, "w" * 64, f"file:{corpus}", n_samples=3, max_tokens=32)
    moments = stats.second_moments([0, 2])
    texts = corpus.read_text().split("\n\n")
    module = tiny.model.get_submodule(tiny.layout.layer_path(tiny.layout.mlp_out, 2))
    keys = []
    for text in texts:
        store = {}
        with capture(module, store):
            tiny.body_hidden(input_ids=tiny.tokenizer(text, return_tensors="pt")["input_ids"])
        keys.append(store["input"][0].double())
    keys = torch.cat(keys)
    direct = keys.T @ keys / len(keys)
    # float32 keys (padded batch there, one text at a time here): errors of ~1e-6 of the matrix's scale (up to ~20)
    assert torch.allclose(moments[2].double(), direct, rtol=1e-4, atol=1e-5 * direct.abs().max().item())
    monkeypatch.setattr(Statistics, "_compute", lambda *a: pytest.fail("recomputed a cached statistic"))
    again = Statistics(tiny, tmp_path, "w" * 64, f"file:{corpus}", n_samples=3, max_tokens=32).second_moments([2, 0])
    assert torch.equal(again[2], moments[2])
    other = Statistics(tiny, tmp_path, "w" * 64, f"file:{corpus}", n_samples=2, max_tokens=32)
    assert other.path(2) != stats.path(2)  # the sample count is part of the key


def test_corpus_names_are_checked(corpus):
    assert corpus_identity(f"file:{corpus}", 32, 0).startswith("file:corpus.txt@")
    assert corpus_identity("wikipedia", 128, 0) == "wikimedia/wikipedia@20231101.en"
    with pytest.raises(UserError, match="mom2_dataset 'wiki' is not one of"):
        corpus_identity("wiki", 128, 0)


def test_offline_wikipedia_says_what_to_use_instead():
    with pytest.raises(UserError, match="mom2_dataset=model"):
        corpus_texts(None, "wikipedia", n=2, max_tokens=8, seed=0)  # the Hub is unreachable here


def test_damaged_statistics_are_reported_and_computed_again(tiny_llama, tmp_path, corpus, capsys):
    from flextape_bench.checksums import sums_file

    stats = Statistics(tiny_llama, tmp_path, "w" * 64, f"file:{corpus}", n_samples=3, max_tokens=32)
    moments = stats.second_moments([0, 1])
    damaged, unchecked = stats.path(0), stats.path(1)
    damaged.write_bytes(damaged.read_bytes()[:100])
    sums_file(unchecked).unlink()  # as if written before checksums
    again = stats.second_moments([0, 1])
    assert torch.equal(again[0], moments[0]) and torch.equal(again[1], moments[1])
    err = capsys.readouterr().err
    assert f"warning: {damaged}: missing, or the content does not match" in err
    assert f"warning: {sums_file(unchecked)}: missing" in err and err.count("computing the statistics again") == 2
    assert stats.second_moments([0, 1])[0].shape == moments[0].shape and capsys.readouterr().err == ""


def test_samples_take_the_full_context_unless_capped(tiny_llama):
    from flextape_bench.editors.covariance import sample_length
    from flextape_bench.errors import UserError

    context = tiny_llama.model.config.max_position_embeddings  # layer_stats truncates to the model's context
    assert sample_length(tiny_llama, "wikipedia", None) == context
    assert sample_length(tiny_llama, "wikipedia", 64) == 64
    assert sample_length(tiny_llama, "file:x.txt", context + 1) == context
    with pytest.raises(UserError, match="mom2_dataset=model samples texts of mom2_max_tokens tokens"):
        sample_length(tiny_llama, "model", None)
