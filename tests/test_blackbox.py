"""Query-based black-box attacks: scores only, within bound and budget,
towards "better" on both orientations, and better than random noise."""
import pytest
import torch

from iqabench.contracts import IQAModel, ScoreOracle
from iqabench.errors import PluginError
from iqabench.registry import build_attack

from models_for_tests import MeanLuma

SMALL = {  # budgets a test can afford
    "square-attack": {"eps": "8/255", "queries": 60},
    "parsimonious": {"eps": "8/255", "queries": 120, "block": 4, "grid": 16, "block_batch": 8},
    "grad-est": {"eps": "8/255", "queries": 45, "samples": 4, "tile": 4, "sigma": "1/255"},
    "onepixel": {"pixels": 2, "queries": 40, "popsize": 10},
}
ATTACKS = list(SMALL)


class NoGradSharpness(IQAModel):
    """A sharpness score that refuses to run where a gradient could flow."""

    name = "test-nograd-sharpness"
    lower_better = False
    min_size = 4

    def __init__(self, lower_better: bool = False):
        super().__init__()
        self.lower_better = lower_better
        self.w = torch.nn.Parameter(torch.tensor(1.0))
        self.score_range = (0.0, 10.0)

    def forward(self, x):
        if torch.is_grad_enabled() or x.requires_grad:
            raise AssertionError("the model was asked for a gradient")
        y = x.mean(1)
        return self.w * 100 * ((y[:, :, 1:] - y[:, :, :-1]).abs().mean((1, 2)))


def _images(n=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.2 + 0.6 * torch.rand(n, 3, size, size, generator=g)


@pytest.mark.parametrize("name", ATTACKS)
@pytest.mark.parametrize("lower", [False, True])
def test_scores_only_bound_budget_and_direction(name, lower):
    torch.manual_seed(0)
    model, x = NoGradSharpness(lower), _images()
    attack = build_attack(name, SMALL[name])
    result = attack.perturb(model, x)
    assert model.w.grad is None and x.grad is None
    with torch.no_grad():
        clean, adv = model(x), model(result.images)
    better = (clean - adv) if lower else (adv - clean)
    assert (better > 0).all(), (name, clean, adv)
    delta = result.images - x
    if name == "onepixel":
        assert (delta.abs().amax(1).flatten(1).gt(0).sum(1) <= 2).all() and result.norm == "l0"
    else:
        assert delta.abs().max() <= 8 / 255 + 1e-6 and result.norm == "linf"
    assert result.images.min() >= 0 and result.images.max() <= 1
    used = [e["queries"] for e in result.extra]
    assert all(0 < q <= attack.queries for q in used)
    curve = result.extra[0]["query_curve"]
    assert curve[0][0] == 1 and curve[-1][0] == used[0]
    assert abs(curve[0][1] - float(clean[0])) < 1e-4 and abs(curve[-1][1] - float(adv[0])) < 1e-4
    scores = [s for _, s in curve]
    assert scores == sorted(scores, reverse=lower)  # the best so far never gets worse


def test_the_oracle_refuses_gradients_and_overspending():
    x = _images(2)
    oracle = ScoreOracle(NoGradSharpness(), x, budget=2, admissible=lambda c, o: torch.ones(len(c), dtype=torch.bool))
    with pytest.raises(PluginError, match="gradient"):
        oracle(x.clone().requires_grad_())
    out = oracle(x)
    with pytest.raises(RuntimeError):
        out.sum().backward()  # no graph behind the scores
    oracle(x)
    with pytest.raises(PluginError, match="budget of 2 queries"):
        oracle(x[:1], torch.tensor([0]))


@pytest.mark.parametrize("name", ATTACKS)
def test_on_the_default_model(name):
    import iqabench

    torch.manual_seed(0)
    model = iqabench.get_model("cnniqa")
    data = iqabench.get_dataset("embedded")
    x = torch.stack([data.load(it) for it in data.items("test")[:2]])[..., :64, :64]
    params = {**SMALL[name]}
    if name == "parsimonious":
        params.update(grid=64, block=16, block_batch=12)
    if name == "grad-est":
        params.update(tile=8)
    result = build_attack(name, params).perturb(model, x)
    with torch.no_grad():
        assert (model(result.images) > model(x)).all()


def test_square_attack_beats_random_noise_of_the_same_norm_on_the_default_model():
    import iqabench

    torch.manual_seed(0)
    model = iqabench.get_model("cnniqa")
    data = iqabench.get_dataset("embedded")
    x = torch.stack([data.load(it) for it in data.items("test")[:4]])[..., :64, :64]
    eps = 8 / 255
    adv = build_attack("square-attack", {"eps": eps, "queries": 300}).perturb(model, x).images
    with torch.no_grad():
        clean, attacked = model(x), model(adv)
        # +-eps on every entry: random noise at the same L-inf norm and at least the attack's L2 norm
        # (cnniqa rates such noise as sharper: it raises every score by itself)
        noise = [model((x + eps * torch.randint(0, 2, x.shape).mul(2).sub(1)).clamp(0, 1)) for _ in range(10)]
    best_noise = torch.stack(noise).max(0).values  # the best of 10 draws, per image
    assert (best_noise > clean).all()
    assert attacked.mean() > best_noise.mean() and (attacked > best_noise).sum() >= 3
    assert (adv - x).flatten(1).ne(0).float().mean() < 0.5  # with fewer entries moved


def test_black_box_attacks_are_not_in_the_wildcard():
    from iqabench.run.plan import wildcard_attacks

    assert not set(ATTACKS) & set(wildcard_attacks("cnniqa")) and "ifgsm" in wildcard_attacks("cnniqa")


def test_a_black_box_cell_records_queries_and_the_curve_per_image(tmp_path):
    import json
    import sqlite3

    from iqabench.contracts import CellSpec
    from iqabench.run.runner import Runner, open_run

    spec = CellSpec(model="cnniqa", dataset="embedded", attack="square-attack", limit=2, batch_size=2,
                    attack_params={"queries": 12, "eps": "8/255"})
    (summary,) = Runner(open_run(tmp_path / "s.sqlite", progress=False)).run([spec])
    db = sqlite3.connect(tmp_path / "s.sqlite")
    rows = db.execute("SELECT attacked, extra FROM images").fetchall()
    for attacked, extra in rows:
        e = json.loads(extra)
        assert e["queries"] == 12 and [q for q, _ in e["query_curve"]] == [1, 2, 5, 10, 12]
        assert e["query_curve"][-1][1] == pytest.approx(attacked, abs=1e-3)
    assert summary["abs_gain"] > 0
    curve = summary["query_curve"]
    assert [q for q, _ in curve] == [1, 2, 5, 10, 12] and curve[0][1] == pytest.approx(0, abs=1e-6)
    assert curve[-1][1] == pytest.approx(summary["abs_gain"], abs=1e-4)
