from dataclasses import dataclass
from typing import Literal

import pytest

from iqabench.errors import ParameterError
from iqabench.params import coerce, parse_assignments, resolve_params


@dataclass
class Toy:
    eps: float = 10 / 255
    iters: int = 10
    targeted: bool = False
    norm: Literal["linf", "l2"] = "linf"


def test_fraction_strings_are_exact_floats():
    assert coerce("10/255", float, "x") == 10 / 255
    assert coerce("0.5", float, "x") == 0.5
    assert coerce(3, float, "x") == 3.0


def test_defaults_are_filled_and_values_coerced():
    out = resolve_params(Toy, {"iters": "5", "targeted": "true", "norm": "l2"}, "attack 'toy'")
    assert out == {"eps": 10 / 255, "iters": 5, "targeted": True, "norm": "l2"}


def test_unknown_parameter_names_the_component_and_the_close_match():
    with pytest.raises(ParameterError, match=r"attack 'toy' has no parameter 'itres' \(did you mean 'iters'\?\)"):
        resolve_params(Toy, {"itres": "5"}, "attack 'toy'")


@pytest.mark.parametrize("key,value", [("iters", "ten"), ("iters", "2.5"), ("eps", "abc"), ("targeted", "maybe"), ("norm", "l1")])
def test_wrong_type_names_the_parameter(key, value):
    with pytest.raises(ParameterError, match=f"parameter '{key}'"):
        resolve_params(Toy, {key: value}, "attack 'toy'")


def test_assignments_need_an_equals_sign():
    assert parse_assignments(["eps=1/255", "iters = 3"]) == {"eps": "1/255", "iters": "3"}
    with pytest.raises(ParameterError, match="KEY=VALUE"):
        parse_assignments(["eps"])
