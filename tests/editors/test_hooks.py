"""Starting a decoder stack at a layer from that layer's kept input, and leaving out the layers above the one read,
on tiny models of every architecture."""

import torch

from flextape_bench.editors.hooks import capture, start_at_layer, stop_after_layer


def test_starting_at_a_layer_from_its_kept_input_gives_the_full_forward_exactly(tiny):
    layers = tiny.model.get_submodule(tiny.layout.layers)
    originals = list(layers)
    texts = ["Marie Waldron was born in", "The mother tongue of Danielle Darrieux is"]
    inputs = tiny.tokenizer(texts, padding=True, return_tensors="pt")
    calls: list[int] = []
    handle = layers[0].register_forward_hook(lambda *_: calls.append(1))
    for first in range(1, len(layers)):
        store: dict[str, torch.Tensor] = {}
        with capture(layers[first], store):
            full = tiny.body_hidden(**inputs)
        calls.clear()
        with start_at_layer(layers, first, store["input"]):
            started = tiny.body_hidden(**inputs)
        assert torch.equal(started, full) and not calls  # the same numbers, without running the layers below
    handle.remove()
    assert all(now is before for now, before in zip(layers, originals))  # every layer put back


def test_stopping_after_a_layer_reads_its_module_exactly_without_running_the_layers_above(tiny):
    layers = tiny.model.get_submodule(tiny.layout.layers)
    originals = list(layers)
    inputs = tiny.tokenizer(
        ["Marie Waldron was born in", "The mother tongue of Danielle Darrieux is"], padding=True, return_tensors="pt"
    )
    ran: list[int] = []
    handles = [layer.register_forward_hook(lambda *_, i=i: ran.append(i)) for i, layer in enumerate(layers)]
    for last in range(len(layers)):
        mlp_out = tiny.model.get_submodule(tiny.layout.layer_path(tiny.layout.mlp_out, last))
        full: dict[str, torch.Tensor] = {}
        with capture(mlp_out, full):
            tiny.body_hidden(**inputs)
        ran.clear()
        stopped: dict[str, torch.Tensor] = {}
        with capture(mlp_out, stopped), stop_after_layer(layers, last):
            tiny.body_hidden(**inputs)
        assert ran == list(range(last + 1))  # layers 0..last ran, once each; none above
        assert torch.equal(stopped["input"], full["input"]) and torch.equal(stopped["output"], full["output"])
    for handle in handles:
        handle.remove()
    assert all(now is before for now, before in zip(layers, originals))  # every layer put back
