"""The quantization-method registry: a method is one module that registers on import, and every name the CLI
accepts comes from the configs themselves."""

import importlib
import sys
import textwrap

import pytest

from edgewise.compress import HANDLERS, METHODS, NAMES, parse_method, quantize
from edgewise.compress import Gptq, Int4WeightOnly, Int8Dynamic, MixedPrecision
from edgewise.compress.methods.llamacpp import LlamaCppQuant
from edgewise.compress.registry import is_weight_only, register_handler
from edgewise.errors import EdgewiseError
from edgewise.optimize.search import nominal_bits


def test_every_builtin_name_builds_its_registered_config():
    assert set(METHODS) >= {"fp32", "torch", "int8", "int8-dynamic", "int8-static", "int4", "int4-hqq",
                            "int4-kquant", "int4-gptq", "mixed", "q8_0", "q4_k_m"}
    for name in METHODS:
        variant, cfg = parse_method(name)
        assert variant == name and type(cfg) in HANDLERS
        for attr in ("names", "nominal_bits", "weight_only"):
            assert hasattr(type(cfg), attr), f"{type(cfg).__name__} does not declare {attr}"
    assert parse_method("int4-hqq")[1] == Int4WeightOnly(algo="hqq")
    assert parse_method("q4_k_m")[1] == LlamaCppQuant(qtype="Q4_K_M")


def test_nominal_bits_and_weight_only_come_from_the_configs():
    assert [nominal_bits(parse_method(n)[1]) for n in ("fp32", "int8", "int4", "int4-gptq", "q8_0", "q4_k_m")] == \
        [32.0, 8.0, 4.0, 4.0, 8.5, 4.89]
    assert nominal_bits(Gptq(bits=8)) == 8.0
    assert nominal_bits(MixedPrecision(budget_bpw=6.0)) == 6.0
    assert nominal_bits(MixedPrecision(budget_bpw=None)) == 8.0  # no budget: the high precision bounds it
    with pytest.raises(EdgewiseError, match="cannot rank Int8Dynamic"):
        nominal_bits(Int8Dynamic())
    assert [n for n in METHODS if is_weight_only(parse_method(n)[1])] == ["int4", "int4-asym", "int4-gptq",
                                                                          "int4-hqq", "int4-kquant", "int8"]
    with pytest.raises(EdgewiseError, match="weight-only configs"):
        MixedPrecision(high=Int8Dynamic())


def test_a_preset_option_cannot_be_overridden_by_its_own_name():
    with pytest.raises(EdgewiseError, match="sets algo itself"):
        parse_method("int4-hqq:algo=rtn")


@pytest.fixture
def method_module(tmp_path):
    """One method module, as a new file under compress/methods/ (or a plugin's) would be; unregistered afterwards."""
    (tmp_path / "ewtest_halfbit.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass

        from edgewise.compress.registry import register_handler


        @dataclass(frozen=True)
        class HalfBit:
            scale: int = 1
            names = {"halfbit": {}, "halfbit-x2": {"scale": 2}}
            nominal_bits = 0.5
            weight_only = False


        @register_handler(HalfBit)
        def halfbit(cfg, ctx, name):
            return (name, cfg.scale, ctx)
    '''))
    sys.path.insert(0, str(tmp_path))
    before_names, before_types = set(METHODS), set(HANDLERS)
    yield "ewtest_halfbit"
    for n in set(NAMES) - before_names:
        del NAMES[n]
    for t in set(HANDLERS) - before_types:
        del HANDLERS[t]
    sys.path.remove(str(tmp_path))
    sys.modules.pop("ewtest_halfbit", None)


def test_an_imported_module_is_a_whole_method(method_module):
    assert "halfbit" not in METHODS
    importlib.import_module(method_module)
    name, cfg = parse_method("halfbit-x2")
    assert (name, cfg.scale, nominal_bits(cfg)) == ("halfbit-x2", 2, 0.5)
    assert quantize(None, cfg, name=name, ctx="ctx") == ("halfbit-x2", 2, "ctx")
    assert "halfbit" in METHODS and METHODS["halfbit"]().scale == 1


def test_a_name_cannot_be_registered_twice(method_module):
    importlib.import_module(method_module)
    cls = type(parse_method("halfbit")[1])
    twin = type("Twin", (), {"names": {"halfbit": {}}, "nominal_bits": 0.5, "weight_only": False})
    with pytest.raises(RuntimeError, match="already taken by HalfBit"):
        register_handler(twin)(lambda cfg, ctx, name: None)
    assert twin not in HANDLERS and NAMES["halfbit"].config_type is cls


def test_a_config_missing_a_member_is_refused_at_registration():
    # `nominal_bit` (misspelled) would otherwise read as "not rankable" in the search, in silence
    typo = type("Typo", (), {"names": {"typo-method": {}}, "nominal_bit": 4.0, "weight_only": False})
    with pytest.raises(TypeError, match="Typo is not a MethodConfig: it has no nominal_bits"):
        register_handler(typo)(lambda cfg, ctx, name: None)
    assert typo not in HANDLERS and "typo-method" not in NAMES
