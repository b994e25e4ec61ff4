import pytest

from flextape_bench.errors import UnknownNameError
from flextape_bench.registry import Registry


def test_register_with_aliases_and_unknown_name_lists_known():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", description="a", aliases=("a",))(1)
    reg.add("beta", 2, description="b")
    assert reg.get("a") == 1 and reg.entry("alpha").aliases == ("a",)
    with pytest.raises(UnknownNameError, match="unknown widget 'gamma'; known widgets: alpha, beta"):
        reg.get("gamma")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", 3, description="dup")
