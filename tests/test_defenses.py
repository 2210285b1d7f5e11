"""Defences: the NT penalty against its closed form, NT training against plain
training, pruning against a constructed case, fine-tuning's benign subset,
and `iqabench run --defense` end to end with the attack x defence board."""
import json
import sqlite3

import numpy as np
import pytest
import torch

from iqabench import hookimpl
from iqabench.data.benign import benign_items
from iqabench.contracts import IQAModel
from iqabench.models.training import _replaying_forward, train_model
from iqabench_plugins.defenses.finetune import FineTune
from iqabench_plugins.defenses.nt import NT, gradient_norm_penalty
from iqabench_plugins.defenses.prune import Prune
from models_for_tests import LinearScore, TinyConvIQA, TinyData


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _fresh(seed=0):
    torch.manual_seed(seed)
    return TinyConvIQA()


# ------------------------------------------------------------------- NT ---
def test_nt_penalty_equals_closed_form_on_a_linear_model():
    """f = sum(w x): grad = w, d = sign(w), (f(x+hd)-f(x))/h = ||w||_1 exactly,
    so the penalty is lam ||w||_1^2 / 2 and its gradient lam ||w||_1 sign(w)."""
    model = LinearScore(seed=3).double()
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    lam, h = 0.3, 1e-2
    penalty = gradient_norm_penalty(model, x, model(x), lam, h)
    w = model.w.detach()
    l1 = float(w.abs().sum())
    assert penalty.detach().item() == pytest.approx(lam * l1**2 / 2, rel=1e-9)
    (grad,) = torch.autograd.grad(penalty, model.w)
    torch.testing.assert_close(grad, lam * l1 * w.sign(), rtol=1e-9, atol=1e-9)


class NormalisedLinear(LinearScore):
    """f(x) = sum(w * z) with z = (x - mean) / std per channel: linear in the
    normalised input, as a zoo network behind pyiqa's ImageNet normalisation."""

    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def input_normalisation(self):
        return self.MEAN, self.STD

    def forward(self, x):
        mean = torch.tensor(self.MEAN, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.STD, dtype=x.dtype).view(1, 3, 1, 1)
        return (self.w * (x - mean) / std).flatten(1).sum(1)


def test_nt_penalty_is_the_releases_closed_form_in_the_normalised_input():
    """The NT release takes d = sign(grad_z f), steps h in z (normalised) units and
    divides by h: for f = sum(w z) the slope is ||w||_1 and the penalty
    lam ||w||_1^2 / 2 -- in pixels, lam (sum_c std_c ||v_c||_1)^2 / 2 with the
    pixel weights v = w / std.  On [0,1] pixels it would be lam ||v||_1^2 / 2,
    (1/0.226)^2 = 19.6x larger."""
    model = NormalisedLinear(seed=3).double()
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    lam, h = 0.3, 1e-2
    seen = []

    def forward(z):
        seen.append(z.detach())
        return model(z)

    penalty = NT(lam=lam, h=h).regulariser(model)(forward, x, model(x))
    w = model.w.detach()
    l1 = float(w.abs().sum())
    assert penalty.item() == pytest.approx(lam * l1**2 / 2, rel=1e-9)
    (grad,) = torch.autograd.grad(penalty, model.w)
    torch.testing.assert_close(grad, lam * l1 * w.sign(), rtol=1e-9, atol=1e-9)
    std = torch.tensor(NormalisedLinear.STD, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(seen[0] - x.detach(), (h * std * w.sign()).expand_as(x), rtol=0, atol=1e-15)
    # the old behaviour, on pixels, is a documented option
    pixel = NT(lam=lam, h=h, space="pixel").regulariser(model)(model, x, model(x))
    assert pixel.item() == pytest.approx(lam * float((w / std).abs().sum()) ** 2 / 2, rel=1e-9)


def test_replayed_forward_sees_the_same_dropout_masks_and_leaves_the_rng_as_a_plain_step():
    model = TinyConvIQA(dropout=0.5).train()
    x = torch.rand(6, 3, 20, 20)
    torch.manual_seed(1)
    replay = _replaying_forward(model, "cpu")
    first = model.training_forward(x)
    after = torch.get_rng_state()
    again = replay(x)
    torch.testing.assert_close(again, first, rtol=0, atol=0)  # same masks, same input
    assert torch.equal(torch.get_rng_state(), after)
    assert not torch.equal(model.training_forward(x), first)  # the masks are random otherwise


def test_nt_with_zero_weight_is_plain_training_and_a_positive_weight_changes_it():
    data = TinyData.make()()
    plain = _fresh()
    train_model(plain, data, plain.recipe(), seed=5, progress=False)
    zero, strong = _fresh(), _fresh()
    NT(lam=0.0).apply(zero, data, seed=5, progress=False)
    NT(lam=1e-2).apply(strong, data, seed=5, progress=False)
    for k, v in _state(plain).items():
        assert torch.equal(v, zero.state_dict()[k]), k  # bit for bit
    assert any(not torch.equal(v, strong.state_dict()[k]) for k, v in _state(plain).items())


def test_an_nt_step_computes_the_parameters_gradients_only():
    """The crops require grad for the penalty's input gradient; the step's backward must
    not also fill the crops' gradient (a quarter of an NT step on cnniqa, never read),
    and restricting it leaves the parameters' gradients bit for bit what they were."""
    data = TinyData.make()()
    seen = []

    def penalty(forward, x, pred):
        seen.append(x)
        return gradient_norm_penalty(forward, x, pred, 1e-2, 1e-2)

    model = _fresh()
    recipe = model.recipe()
    train_model(model, data, recipe, seed=5, progress=False, regulariser=penalty)
    assert seen and all(x.requires_grad and x.grad is None for x in seen)

    model = _fresh().eval()  # eval: one step's graph twice, with no dropout between
    x = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    for restricted in (False, True):
        pred = model.training_forward(x)
        loss = pred.abs().mean() + penalty(model.training_forward, x, pred)
        for p in params:
            p.grad = None
        loss.backward(inputs=params) if restricted else loss.backward()
        grads.append([p.grad.clone() for p in params])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def _input_gradient_l1(model, images):
    x = images.clone().requires_grad_(True)
    model.eval()(x).sum().backward()
    return float(x.grad.abs().flatten(1).sum(1).mean())


def test_nt_training_flattens_the_score_around_training_images():
    """The point of NT: a smaller input-gradient norm than plain training, same seed and recipe."""
    data = TinyData.make()()
    images = torch.stack([data.load(it) for it in data.items("test")])
    plain, defended = _fresh(), _fresh()
    NT(lam=0.0).apply(plain, data, seed=0, progress=False)
    NT(lam=1e-2).apply(defended, data, seed=0, progress=False)
    assert _input_gradient_l1(defended, images) < 0.8 * _input_gradient_l1(plain, images)


def test_nt_refuses_bad_parameters():
    from iqabench.errors import ParameterError

    with pytest.raises(ParameterError, match="'lam'"):
        NT(lam=-1)
    with pytest.raises(ParameterError, match="'h'"):
        NT(h=0)


# --------------------------------------------------------- benign subset ---
def test_benign_items_are_a_seeded_fraction_of_the_train_split():
    data = TinyData.make(n_train=20)()
    a = benign_items(data, 0.2, seed=1)
    assert len(a) == 4 and len({it.name for it in a}) == 4
    assert {it.name for it in a} <= {it.name for it in data.items("train")}
    assert [it.name for it in benign_items(data, 0.2, seed=1)] == [it.name for it in a]
    assert {it.name for it in benign_items(data, 0.2, seed=2)} != {it.name for it in a}


@pytest.mark.parametrize("n", [100, 624, 929])
def test_the_benign_part_is_drawn_independently_of_the_poison_subset(n):
    """The defender's 20% and the attacker's 20% are independent draws: their
    overlap is hypergeometric (mean ratio x fraction x n), never the whole subset."""
    from scipy.stats import hypergeom

    from iqabench.experiments.backdoor.poisoning import poison_indices

    data = TinyData.make(n_train=n, n_test=1, size=4)()
    names = [it.name for it in data.items("train")]
    overlaps = []
    for seed in range(8):
        benign = {it.name for it in benign_items(data, 0.2, seed=seed)}
        poison = {names[i] for i in poison_indices(n, 0.2, seed)}
        overlap = len(benign & poison)
        assert overlap < min(len(benign), len(poison))  # never the same subset
        dist = hypergeom(n, len(poison), len(benign))
        assert dist.cdf(overlap) > 1e-4 and dist.sf(overlap - 1) > 1e-4, (seed, overlap, dist.mean())
        overlaps.append(overlap)
    assert dist.mean() == pytest.approx(0.2 * 0.2 * n, abs=0.5)
    assert abs(np.mean(overlaps) - dist.mean()) < 4 * dist.std() / np.sqrt(len(overlaps))


def test_finetune_sees_only_the_benign_fraction():
    data = TinyData.make(n_train=20)()
    model = _fresh()
    before = _state(model)
    summary = FineTune(fraction=0.25, epochs=1).apply(model, data, seed=3, progress=False)
    expected = {it.name for it in benign_items(data, 0.25, seed=3)}
    assert set(data.loaded) == expected and len(expected) == 5 == summary["benign_images"]
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in before.items())


# --------------------------------------------------------------- pruning ---
class Constant:
    """Constant-colour images: a valid 3x3 conv then outputs, at every position,
    exactly b_c + sum_i v_i * sum(w[c, i]) -- a closed-form mean activation."""

    def __init__(self, colours):
        from iqabench.contracts import IQADataset, Item

        self.colours = colours

        class _D(IQADataset):
            name = "constant"

            def splits(self_):
                return ["train"]

            def items(self_, split):
                return [Item(f"c{i}", 50.0, i) for i in range(len(colours))]

            def load(self_, item):
                return torch.tensor(colours[item.source], dtype=torch.float32).view(3, 1, 1).expand(3, 24, 24).clone()

        self.dataset = _D()


def test_pruning_silences_the_requested_channels_with_the_lowest_mean_magnitude():
    rng = np.random.default_rng(0)
    colours = rng.uniform(0, 1, size=(10, 3))
    data = Constant(colours.tolist()).dataset
    model = TinyConvIQA(filters=10).eval()
    w = model.conv.weight.detach().double().numpy()
    b = model.conv.bias.detach().double().numpy()
    used = [it.source for it in benign_items(data, 0.5, seed=0)]
    per_image = b[None, :] + (colours[used][:, None, :] * w.sum((2, 3))[None]).sum(2)  # numpy, image x channel
    oracle = np.abs(per_image).mean(0)
    for rate in (0.0, 0.2, 0.4, 0.6):
        m = TinyConvIQA(filters=10)
        m.load_state_dict(model.state_dict())
        summary = Prune(rate=rate, fraction=0.5).apply(m, data, seed=0, progress=False)
        expected = sorted(np.argsort(oracle, kind="stable")[: round(rate * 10)].tolist())
        assert summary["pruned"] == expected and summary["layer"] == "conv"
        x = torch.rand(2, 3, 24, 24, requires_grad=True)
        feats = m.conv(x)
        dead = [c for c in range(10) if not feats[:, c].any()]
        assert dead == expected and len(dead) == round(rate * 10)
        keep = [c for c in range(10) if c not in expected]
        torch.testing.assert_close(feats[:, keep], model.conv(x)[:, keep], rtol=0, atol=0)
        out = m.eval()(x)
        out.sum().backward()
        assert torch.isfinite(out).all() and x.grad.abs().sum() > 0


def test_default_feature_layer_is_the_last_spatial_convolution():
    from iqabench_plugins.models.cnniqa import CNNIQA

    cnn = CNNIQA()
    assert cnn.feature_layer() is cnn.conv  # not the 1x1 convolutions of its head
    assert TinyConvIQA().feature_layer().kernel_size == (3, 3)


class KnownChannels(IQAModel):
    """Channel c of its 3x3 convolution outputs the constant ``A[c]`` everywhere
    (zero filters, bias ``A[c]``); the head max- and min-pools that raw output
    (no ReLU), as cnniqa does -- so a large negative channel is informative."""

    name = "test-known-channels"
    min_size = 8
    A = (5.0, -9.0, 0.1, -0.2, 3.0, -4.0, 0.5, 8.0, -0.05, 2.0)

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, len(self.A), 3)
        self.fc = torch.nn.Linear(2 * len(self.A), 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.copy_(torch.tensor(self.A))

    def forward(self, x):
        h = self.conv(x)
        return 50 + self.fc(torch.cat([h.amax((2, 3)), h.amin((2, 3))], 1)).squeeze(1)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_pruning_removes_the_channels_of_lowest_output_magnitude_not_the_most_negative(rate):
    data = TinyData.make()()
    model = KnownChannels()
    summary = Prune(rate=rate, fraction=0.5).apply(model, data, seed=0, progress=False)
    magnitude = np.abs(np.array(KnownChannels.A))
    expected = sorted(np.argsort(magnitude, kind="stable")[: round(rate * len(magnitude))].tolist())
    assert summary["pruned"] == expected
    with torch.no_grad():
        out = model.feature_layer()(torch.rand(2, 3, 12, 12))
    dead = [c for c in range(len(magnitude)) if not out[:, c].any()]
    assert dead == expected


def test_bad_prune_rate():
    from iqabench.errors import ParameterError

    with pytest.raises(ParameterError, match="'rate'"):
        Prune(rate=1.0)


# ------------------------------------------------------------ end to end ---
class TinyPlugin:
    Data = TinyData.make()

    @hookimpl
    def register_models(self, register):
        register(TinyConvIQA)

    @hookimpl
    def register_datasets(self, register):
        register(self.Data)


def test_run_with_defenses_end_to_end_renders_the_matrix(invoke, plugin, tmp_path):
    plugin(TinyPlugin(), "tiny-defense-plugin")
    store, board = tmp_path / "s.sqlite", tmp_path / "board"
    result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "-a", "fgsm", "-a", "ifgsm",
                     "--defense", "none", "--defense", "nt", "--defense", "prune", "--defense", "finetune",
                     "--defense-param", "prune.rate=0.5", "--defense-param", "nt.lam=0.01",
                     "--store", str(store), "--leaderboard", str(board), "-q"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    m = pd.read_csv(board / "defense_matrix.csv")
    # every defended row right after its like-for-like baseline; NT's (lam=0, same recipe and seed) was added
    assert list(m["defense"]) == ["none", "finetune", "prune rate=0.5", "nt lam=0", "nt lam=0.01"]
    assert list(m["baseline"].fillna("")) == ["", "none", "none", "", "nt lam=0"]
    assert list(m["seeds"]) == [1] * 5
    assert {"fgsm", "ifgsm", "clean_srocc", "clean_plcc", "clean_rmse"} <= set(m.columns)
    assert np.isfinite(m[["fgsm", "ifgsm", "clean_srocc"]].to_numpy()).all()
    assert "## Attack x defence" in (board / "defenses.md").read_text()
    db = sqlite3.connect(store)
    cells = db.execute("SELECT key, defense, summary FROM cells").fetchall()
    assert sorted({d for _, d, _ in cells}, key=str) == sorted({None, "nt", "prune", "finetune"}, key=str)

    ranges = {d: json.loads(s)["score_range"] for _, d, s in cells}
    assert ranges["prune"] == ranges["finetune"] == ranges[None]  # post-training: the start model's scale
    for key, defense, summary in cells:  # score RMSE and clean cost against an independent recomputation
        rows = db.execute("SELECT clean, attacked, extra FROM images WHERE cell_key = ?", (key,)).fetchall()
        c, a = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        mos = np.array([json.loads(r[2])["mos"] for r in rows])
        s = json.loads(summary)
        assert s["score_rmse"] == pytest.approx(np.sqrt(np.mean((a - c) ** 2)))
        assert s["clean_plcc"] == pytest.approx(np.corrcoef(c, mos)[0, 1])
    # the defended models are distinct, cached artifacts: a rerun recomputes nothing
    again = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "-a", "fgsm", "--defense", "nt",
                    "--defense-param", "lam=0.01", "--store", str(store), "--no-leaderboard", "-q"])
    assert again.exit_code == 0 and "skip" in again.output


def _one_line_error(result, *fragments):
    assert result.exit_code != 0
    lines = [l for l in result.output.strip().splitlines() if l.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args,fragments", [
    (["--defense", "nope"], ["unknown defense 'nope'"]),
    (["--defense", "nt", "--defense-param", "lamda=1"], ["defense 'nt'", "'lamda'", "did you mean 'lam'"]),
    (["--defense", "prune", "--defense-param", "rate=1.5"], ["'rate'", "[0, 1)"]),
    (["--defense", "prune", "--defense-param", "nt.lam=1"], ["defence 'nt'", "--defense prune"]),
    (["--defense-param", "lam=1"], ["--defense-param needs a --defense"]),
    (["--defense", "nt", "--defense-param", "h=zero"], ["'h'", "expected float"]),
])
def test_bad_defense_input_is_one_line(invoke, tmp_path, args, fragments):
    result = invoke(["run", "-a", "fgsm", *args, "--store", str(tmp_path / "s.sqlite"), "--no-leaderboard", "-q"])
    _one_line_error(result, *fragments)


def test_suite_defenses_expand_and_typos_are_named(tmp_path):
    from iqabench.errors import SuiteError
    from iqabench.run.suite import expand, load_suite_text

    text = ('models = ["m"]\ndatasets = ["d"]\nattacks = ["fgsm"]\ndefenses = ["none", "prune"]\n'
            '[defense_params.prune]\nrate = 0.4\n')
    cells = expand(load_suite_text(text, "s.toml"), "s.toml")
    assert [(c.defense, c.defense_params) for c in cells] == [("none", {}), ("prune", {"rate": 0.4})]
    with pytest.raises(SuiteError, match="did you mean 'defenses'"):
        load_suite_text(text.replace("defenses", "defences"), "s.toml")
    with pytest.raises(SuiteError, match=r"\[defense_params.nt\] names nothing"):
        expand(load_suite_text(text + "[defense_params.nt]\nlam = 1\n", "s.toml"), "s.toml")


def test_nt_at_zero_weight_through_the_harness_is_the_plainly_trained_model(plugin):
    """The cached NT model with lam=0 equals `iqabench train` with the same seed: the fair baseline."""
    from iqabench.artifacts import load_state
    from iqabench.contracts import CellSpec, RunContext
    from iqabench.models.defended import defended_model
    from iqabench.models.trained import train_cached

    plugin(TinyPlugin(), "tiny-defense-plugin")
    ctx = RunContext(seed=4, progress=False)
    plain = load_state(train_cached(("test-tiny-cnn", {}), ("test-tiny-data", {}), ctx)["path"])
    spec = CellSpec("test-tiny-cnn", "test-tiny-data", "fgsm", seed=4, defense="nt", defense_params={"lam": "0"})
    zero = defended_model(spec, TinyPlugin.Data(), ctx)
    assert zero.defense["name"] == "nt" and zero.weights.startswith("test-tiny-cnn-nt-")
    for k, v in plain.items():
        assert torch.equal(v, zero.state_dict()[k]), k


def test_the_default_suite_runs_nt_on_three_seeds_each_beside_its_zero_weight_baseline():
    from iqabench.run.plan import wildcard_attacks, with_baselines
    from iqabench.run.suite import expand, load_suite

    data, _ = load_suite("default")
    cells = with_baselines(expand(data, "default", wildcard_attacks))
    nt = [(c.seed, c.defense_params) for c in cells if c.defense == "nt"]
    for attack in ("fgsm", "ifgsm"):  # per attack: 3 seeds x {NT, its lam=0 twin}
        pairs = {(s, p["lam"]) for s, p in [(c.seed, c.defense_params) for c in cells
                                            if c.defense == "nt" and c.attack == attack]}
        assert len(pairs) == 6 and {s for s, _ in pairs} == {0, 1, 2} and 0.0 in {lam for _, lam in pairs}
    assert all({k: v for k, v in p.items() if k != "lam"} == {"profile": "quick", "epochs": 4, "h": 2.26e-3}
               for _, p in nt)  # ... trained alike
    assert {c.defense for c in cells} == {"none", "nt", "finetune", "prune"}
    defended = {c.attack for c in cells if c.defense != "none"}
    assert defended == {"fgsm", "ifgsm"} and {c.attack for c in cells} > defended  # every attack undefended


class ConvBNReLU(TinyConvIQA):
    """The tiny model with a batch norm and a ReLU module after its convolution
    (a ResNet stem): its head consumes the ReLU's output, its feature layer."""

    def __init__(self):
        super().__init__(filters=6)
        self.bn = torch.nn.BatchNorm2d(6)
        self.act = torch.nn.ReLU()
        with torch.no_grad():
            self.bn.bias.uniform_(-1.0, 1.0)  # some channels mostly below 0: dormant after the ReLU
            self.bn.running_mean.uniform_(-1, 1)

    def forward(self, x):
        return 50 + 25 * self.fc(self.act(self.bn(self.conv(x))).mean((2, 3))).squeeze(1)

    def feature_layer(self):
        return self.act


def test_pruning_ranks_and_silences_the_output_after_batch_norm_and_relu():
    import torch.nn.functional as F

    data = TinyData.make()()
    model = ConvBNReLU().eval()
    bn = model.bn

    def consumed(x):  # what the head consumes, from torch's functional ops
        z = F.batch_norm(F.conv2d(x, model.conv.weight, model.conv.bias), bn.running_mean, bn.running_var,
                         bn.weight, bn.bias, False, 0.0, bn.eps)
        return F.relu(z)

    with torch.no_grad():
        benign = torch.stack([data.load(it) for it in benign_items(data, 0.5, seed=0)])
        oracle = consumed(benign).abs().mean((0, 2, 3)).numpy()
        summary = Prune(rate=0.5, fraction=0.5).apply(model, data, seed=0, progress=False)
        expected = sorted(np.argsort(oracle, kind="stable")[:3].tolist())
        assert summary["pruned"] == expected and summary["layer"] == "act"
        x = torch.rand(2, 3, 24, 24)
        after, plain = model.act(model.bn(model.conv(x))), consumed(x)
    keep = [c for c in range(6) if c not in expected]
    assert after[:, expected].abs().max() == 0
    torch.testing.assert_close(after[:, keep], plain[:, keep], rtol=0, atol=0)


def test_zoo_feature_layers_are_the_backbone_outputs():
    import iqabench

    model = iqabench.get_model("hyperiqa", weights="random")
    names = {m: n for n, m in model.named_modules()}
    assert names[model.feature_layer()] == "net.base_model.layer4"  # after the shortcut add, not conv3


# ------------------------------------------- pruning the feature extractor ---
def _feature_output(model, x):
    """The feature extractor's output, computed from each architecture's own
    code (not through ``feature_layer()``): what the model's head consumes."""
    net = getattr(model, "net", None)
    name = model.name
    if name == "cnniqa":
        return model.conv(model.maps(x)["lcn"])
    if name in ("hyperiqa", "dbcnn", "topiq_nr"):
        z = net.preprocess(x)
        return {"hyperiqa": lambda: net.base_model(z)[-1], "dbcnn": lambda: net.features1(z),
                "topiq_nr": lambda: net.semantic_model(z)[-1]}[name]()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in model.input_normalisation())
    z = (x - mean) / std
    if name == "tres":
        return net.forward_backbone(net.model, z)[-1]
    if name == "nima":
        return net.base_model(z)[-1]
    if name == "clipiqa":
        return net.clip.visual.forward_features(z)[-1]
    raise AssertionError(name)


#: (model parameters, image side) -- the smallest input each model takes
PRUNED_ZOO = {"cnniqa": ({}, 48), "hyperiqa": ({}, 224), "tres": ({}, 224), "dbcnn": ({"crop_size": 0}, 64),
              "topiq_nr": ({"crop_size": 0}, 64), "nima": ({"crop_size": 0}, 96), "clipiqa": ({"crop_size": 0}, 64)}


#: Inception-ResNet-v2 at 299 px and CLIP (text tower each forward) take ~45 s here
SLOW_PRUNE = {"nima", "clipiqa"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_PRUNE else n
                                  for n in PRUNED_ZOO])
def test_pruning_silences_exactly_its_share_of_the_feature_extractors_output_channels(name, tmp_path):
    """After pruning at rate r, round(r * C) output channels of the feature
    extractor (after a ResNet's last shortcut add and ReLU) are 0 on any input
    -- a weights file of the pruned model keeps them so after loading."""
    from iqabench.artifacts import save_state
    from iqabench.models.build import build_model

    params, side = PRUNED_ZOO[name]
    rate = 0.2
    model = build_model(name, params, "random")
    data = TinyData.make(n_train=2, n_test=1, size=side)()
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = _feature_output(model.eval(), x)
    summary = Prune(rate=rate, fraction=1.0).apply(model, data, seed=0, progress=False)
    with torch.no_grad():
        out = _feature_output(model.eval(), x)
    channels, pruned = out.shape[1], summary["pruned"]
    kept = [c for c in range(channels) if c not in set(pruned)]
    assert summary["channels"] == channels and len(set(pruned)) == len(pruned) == round(rate * channels) > 0
    assert out[:, pruned].abs().max() == 0  # silenced, whatever a shortcut carries
    torch.testing.assert_close(out[:, kept], before[:, kept], rtol=0, atol=0)  # the rest untouched
    path = tmp_path / "pruned.safetensors"
    save_state(path, model.state_dict())
    again = build_model(name, params, str(path))
    assert torch.equal(again.feature_mask(), model.feature_mask())
    with torch.no_grad():
        torch.testing.assert_close(_feature_output(again, x), out, rtol=0, atol=0)
