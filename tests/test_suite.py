import pytest

from iqabench.errors import SuiteError
from iqabench.run.suite import expand, load_suite, load_suite_text

GOOD = """
models = ["m1", "m2"]
datasets = ["d"]
attacks = ["a", "b"]
seeds = [0, 1]
[params.a]
eps = "4/255"
"""


def test_grid_is_the_full_product():
    cells = expand(load_suite_text(GOOD, "s.toml"), "s.toml")
    assert len(cells) == 2 * 1 * 2 * 2
    assert {(c.model, c.attack, c.seed) for c in cells} == {(m, a, s) for m in ("m1", "m2") for a in ("a", "b") for s in (0, 1)}
    assert all(c.attack_params == ({"eps": "4/255"} if c.attack == "a" else {}) for c in cells)


def test_star_expands_through_the_filter_and_keeps_explicit_attacks():
    data = load_suite_text('models=["m"]\ndatasets=["d"]\nattacks=["*", "extra"]', "s")
    cells = expand(data, "s", attack_filter=lambda model: ["x", "y"])
    assert [c.attack for c in cells] == ["x", "y", "extra"]


def test_typo_in_a_key_names_file_key_and_suggestion(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(GOOD.replace("attacks", "atacks", 1))
    with pytest.raises(SuiteError, match=r"suite.toml: unknown key 'atacks' \(did you mean 'attacks'\?\)"):
        load_suite(str(path))


def test_params_for_an_attack_not_in_the_suite_is_an_error():
    data = load_suite_text(GOOD.replace("[params.a]", "[params.aa]"), "s.toml")
    with pytest.raises(SuiteError, match=r"\[params.aa\] names nothing in the suite"):
        expand(data, "s.toml")


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [")
    with pytest.raises(SuiteError, match="bad.toml: invalid TOML"):
        load_suite(str(bad))
    with pytest.raises(SuiteError, match="suite file not found"):
        load_suite(str(tmp_path / "missing.toml"))


def test_the_default_suite_is_registered():
    data, text = load_suite("default")
    assert text and any("*" in grid.get("attacks", []) and grid.get("defenses", ["none"]) == ["none"]
                        for grid in data["grid"])  # every attack that suits the model, undefended


def test_include_concatenates_suites_each_cell_once_and_refuses_cycles(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text(GOOD)
    b = tmp_path / "b.toml"
    b.write_text(f'include = ["{a}"]\nmodels = ["m1"]\ndatasets = ["d"]\nattacks = ["a", "c"]\n'
                 '[params.a]\neps = "4/255"\n')
    cells = expand(load_suite(str(b))[0], "b.toml")
    own = [("m1", "a", 0), ("m1", "c", 0)]  # ("m1", "a", 0) with the same params is GOOD's already
    assert [(c.model, c.attack, c.seed) for c in cells] == [
        (c.model, c.attack, c.seed) for c in expand(load_suite_text(GOOD, "a"), "a")] + own[1:]
    only = tmp_path / "only.toml"
    only.write_text(f'include = ["{a}", "{b}"]\n')
    assert expand(load_suite(str(only))[0], "only.toml") == cells
    a.write_text(f'include = ["{only}"]\n')
    with pytest.raises(SuiteError, match="includes itself"):
        expand(load_suite(str(only))[0], "only.toml")


def test_a_directory_named_like_a_registered_suite_does_not_shadow_it(tmp_path, monkeypatch):
    (tmp_path / "default").mkdir()
    monkeypatch.chdir(tmp_path)
    data, _ = load_suite("default")
    assert data["name"] == "default"


LADDER = """
models = ["cnniqa"]
datasets = ["embedded"]
attacks = ["ifgsm", "fgsm"]
defenses = ["none", "prune"]
[params.ifgsm]
eps = ["1/255", "2/255", "4/255"]
iters = 2
[defense_params.prune]
rate = [0.1, 0.3]
"""


def _single(attack, eps=None, defense="none", rate=None):
    text = f'models = ["cnniqa"]\ndatasets = ["embedded"]\nattacks = ["{attack}"]\ndefenses = ["{defense}"]\n'
    if eps is not None:
        text += f'[params.{attack}]\neps = "{eps}"\niters = 2\n'
    if rate is not None:
        text += f"[defense_params.prune]\nrate = {rate}\n"
    (cell,) = expand(load_suite_text(text, "one.toml"), "one.toml")
    return cell


def test_a_list_parameter_is_a_ladder_one_cell_per_value_each_equal_to_its_single_value_cell():
    from iqabench.run.plan import validate_cell

    cells = expand(load_suite_text(LADDER, "s.toml"), "s.toml", check=validate_cell)
    want = [_single("ifgsm", e, d, r) for d, r in (("none", None), ("prune", 0.1), ("prune", 0.3))
            for e in ("1/255", "2/255", "4/255")]
    want += [_single("fgsm", None, d, r) for d, r in (("none", None), ("prune", 0.1), ("prune", 0.3))]
    assert sorted(map(repr, cells)) == sorted(map(repr, want))  # the same cells (hence the same keys)
    assert len(cells) == 3 * 3 + 3


def test_a_list_for_a_sequence_typed_parameter_is_one_value_and_a_list_of_lists_a_ladder(plugin):
    from models_for_tests import MeanLuma, Registers

    class Picky(MeanLuma):  # a model whose parameter is itself a sequence
        name = "test-picky"

        def __init__(self, channels: tuple[int, ...] = (0, 1, 2)):
            super().__init__()

    plugin(Registers(models=[Picky]), "picky")
    base = 'models = ["test-picky"]\ndatasets = ["d"]\nattacks = ["a"]\n[model_params.test-picky]\n'
    (one,) = expand(load_suite_text(base + "channels = [0, 1]\n", "s"), "s")
    assert one.model_params == {"channels": [0, 1]}
    two = expand(load_suite_text(base + "channels = [[0], [1, 2]]\n", "s"), "s")
    assert [c.model_params for c in two] == [{"channels": [0]}, {"channels": [1, 2]}]


def test_the_pruning_sweep_is_one_grid_with_the_cells_of_one_grid_per_rate():
    old = LEGACY_PRUNE_GRIDS
    new, _ = load_suite("backdoor-defenses")
    assert len(new["grid"]) == 2  # none + finetune; prune with its ladder of rates
    assert expand(new, "new") == expand(load_suite_text(old, "old"), "old")


LEGACY_PRUNE_GRIDS = """
models = ["cnniqa"]
datasets = ["embedded"]
attacks = ["baiqa-p"]
seeds = [0]
split = "test"
batch_size = 16
""" + '[[grid]]\ndefenses = ["none", "finetune"]\ndefense_params.finetune = { profile = "quick" }\n' + "".join(
    f'[[grid]]\ndefenses = ["prune"]\ndefense_params.prune = {{ rate = {r} }}\n' for r in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6))


def test_jpeg_quality_is_a_suite_key_and_a_list_of_qualities_a_ladder():
    base = 'models = ["m"]\ndatasets = ["d"]\nattacks = ["a"]\n'
    (plain,) = expand(load_suite_text(base, "s"), "s")
    cells = expand(load_suite_text(base + "jpeg_quality = [0, 10]\n", "s"), "s")
    assert [c.jpeg_quality for c in cells] == [0, 10] and cells[0] == plain


def test_the_default_suite_has_an_ifgsm_eps_ladder_and_a_small_black_box_attack():
    from iqabench.registry import lookup
    from iqabench.run.plan import validate_cell, wildcard_attacks

    data, _ = load_suite("default")
    cells = [c for c in expand(data, "default", wildcard_attacks, validate_cell) if c.defense == "none"]
    eps = {c.attack_params.get("eps") for c in cells if c.attack == "ifgsm" and c.seed == 0}
    assert len(eps) >= 5  # the '*' cell's default and the ladder's values
    black = [c for c in cells if getattr(lookup("attack", c.attack).obj, "black_box", False)]
    assert len(black) == 1 and int(black[0].attack_params["queries"]) <= 200
