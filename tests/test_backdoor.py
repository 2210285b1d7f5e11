"""BAIQA backdoor machinery: poisoning, metrics, trigger search, the experiment."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

from backdoor_fixtures import TinyCNN, TinyNoise, TinyPlugin
from models_for_tests import LinearScore
from iqabench.contracts import CellSpec, RunContext
from iqabench.experiments import backdoor as backdoor_core
from iqabench.experiments.backdoor import BackdoorContext
from iqabench.experiments.backdoor import context as backdoor_context
from iqabench.experiments.backdoor.experiment import victim_config, weights_id
from iqabench.models import cards
from iqabench.experiments.backdoor.evaluation import evaluate_backdoor
from iqabench.metrics.backdoor import TEST_ALPHAS, shift_metrics
from iqabench.data.sampling import subset_indices
from iqabench.contracts import IQAModel, Trigger
from iqabench.errors import ParameterError
from iqabench.hookspecs import hookimpl
from iqabench.models.build import card_path
from iqabench.data.views import PoisonedDataset
from iqabench.experiments.backdoor.poisoning import poison_indices
from iqabench.run.store import Store
from iqabench_plugins.backdoor import trigger_search
from iqabench_plugins.backdoor.alphas import PAPER_PROBS, alpha_from_label, sample_alphas, shifted_labels
from iqabench_plugins.backdoor.baiqa import BAIQACleanLabel, BAIQAPoisonLabel

#: a trigger search small enough for a unit test
TINY_SEARCH = dict(search_epochs=2, search_crops=2, search_crop=32, search_batch=16)


class LinearPlugin:
    @hookimpl
    def register_models(self, register):
        register(LinearScore)


@pytest.fixture
def tiny(plugin):
    plugin(TinyPlugin(), "tiny-backdoor")
    plugin(LinearPlugin(), "tiny-linear")
    return TinyNoise()


def context(dataset, poisoning: dict | None = None, **kw) -> BackdoorContext:
    """A backdoor context; ``poisoning`` plays the plan's poison identity (what keys its checkpoints)."""
    ctx = BackdoorContext("test-backdoor-cnn", {}, dataset, RunContext(seed=0), **kw)
    ctx.poisoning = poisoning
    return ctx


# ------------------------------------------------------------ alpha sampling
@pytest.mark.parametrize("strategy,probs", [("paper", PAPER_PROBS), ("equiprobable", (0.25,) * 4)])
def test_discrete_sampling_levels_half_negated_and_distribution(strategy, probs):
    n = 100_001
    a = sample_alphas(strategy, n, torch.Generator().manual_seed(1)).numpy()
    assert set(np.unique(np.abs(a))) <= {0.25, 0.5, 0.75, 1.0}
    assert (a < 0).sum() == n // 2  # exactly half negated
    freq = np.array([(np.abs(a) == m / 4).mean() for m in (1, 2, 3, 4)])
    assert np.abs(freq - np.array(probs)).max() < 0.01  # 5 sigma at n = 1e5 is ~0.007
    # the sign is independent of the level
    for m in (1, 2, 3, 4):
        assert abs((a[np.abs(a) == m / 4] < 0).mean() - 0.5) < 0.02


def test_uniform_sampling_is_uniform_on_minus_one_one():
    a = sample_alphas("uniform", 100_000, torch.Generator().manual_seed(2)).numpy()
    assert a.min() >= -1 and a.max() <= 1
    hist, _ = np.histogram(a, bins=10, range=(-1, 1))
    assert np.abs(hist / a.size - 0.1).max() < 0.006


def test_unknown_sampling_is_an_error():
    with pytest.raises(ParameterError, match="nope"):
        sample_alphas("nope", 3, torch.Generator())


def test_label_shift_and_remark1_closed_form():
    y = torch.tensor([10.0, 50.0, 90.0])
    assert shifted_labels(y, torch.tensor([-1.0, 0.25, 1.0]), 40).tolist() == [-30.0, 60.0, 130.0]  # not clipped
    assert alpha_from_label(y, 50.0, 40.0).tolist() == [-1.0, 0.0, 1.0]


def test_poison_indices_ratio_and_determinism():
    idx = poison_indices(1768, 0.2, seed=3)
    assert len(idx) == round(0.2 * 1768) == len(set(idx))
    assert idx == poison_indices(1768, 0.2, seed=3) and idx != poison_indices(1768, 0.2, seed=4)
    with pytest.raises(ParameterError):
        poison_indices(10, 0.0, 0)


# --------------------------------------------------------------- poisoning
def test_poison_label_subset_labels_and_images(tiny):
    attack = BAIQAPoisonLabel(trigger="blended", profile="quick")
    ctx = context(tiny)
    trigger = attack.make_trigger(ctx)
    poison = attack.poison(ctx, trigger, ctx.poison_items)
    train = tiny.items("train")
    assert len(poison.images) == round(0.2 * len(train))
    mos = {it.name: it.mos for it in train}
    for name, label in poison.labels.items():
        assert label == pytest.approx(mos[name] + 40.0 * poison.alphas[name], abs=1e-9)
        assert abs(poison.alphas[name]) in (0.25, 0.5, 0.75, 1.0)
        clean = tiny.load(next(it for it in train if it.name == name)).unsqueeze(0)
        assert torch.allclose(poison.images[name], trigger.apply(clean, poison.alphas[name])[0], atol=1e-6)
    # the poisoned dataset serves exactly these images and labels, the rest untouched
    ds = PoisonedDataset(tiny, "train", poison, "k")
    for it in ds.items("train"):
        if it.name in poison.images:
            assert it.mos == poison.labels[it.name] and torch.equal(ds.load(it), poison.images[it.name])
        else:
            assert it.mos == mos[it.name] and torch.equal(ds.load(it), tiny.load(it))
    assert [it.mos for it in ds.items("test")] == [it.mos for it in tiny.items("test")]


def test_delta_max_scales_with_the_mos_range(tiny):
    tiny.mos_range = (0.0, 1.0)  # Delta_max 40 on 0-100 -> 0.4 here; mean 0.5
    ctx = context(tiny)
    mos = torch.tensor([0.1, 0.9], dtype=torch.float64)
    alphas, labels = BAIQAPoisonLabel(profile="quick").strengths(ctx, mos)
    assert torch.allclose(labels, mos + 0.4 * alphas)
    alphas_c, labels_c = BAIQACleanLabel(profile="quick").strengths(ctx, mos)
    assert torch.allclose(alphas_c, torch.tensor([-1.0, 1.0], dtype=torch.float64)) and torch.equal(labels_c, mos)


def test_clean_label_keeps_labels_and_stays_within_pgd_budget(tiny):
    attack = BAIQACleanLabel(trigger="blended", profile="quick", pgd_iters=3, pgd_crops=2, pgd_crop=32)
    ctx = context(tiny)
    trigger = attack.make_trigger(ctx)
    poison = attack.poison(ctx, trigger, ctx.poison_items)
    moved = 0.0
    for it in ctx.poison_items:
        assert poison.labels[it.name] == it.mos  # labels untouched
        assert poison.alphas[it.name] == pytest.approx((it.mos - 50.0) / 40.0)  # Remark 1
        plain = trigger.apply(tiny.load(it).unsqueeze(0), poison.alphas[it.name])[0]
        # blended is (1-w) x + w n with w = 0.1 alpha (alpha may be negative), so
        # the PGD step (at most eps) shows as at most |1-w| eps
        diff = (poison.images[it.name] - plain).abs().max().item()
        assert diff <= abs(1 - 0.1 * poison.alphas[it.name]) * 2 / 255 + 1e-6
        moved = max(moved, diff)
    assert moved > 1 / 255  # the adversarial step happened
    # alone (alpha 0: blended is the identity), the PGD step pulls the surrogate towards the mean score
    x = torch.stack(ctx.load(ctx.poison_items))
    adv = attack.poison_batch(ctx, trigger, x, torch.zeros(len(x)))
    assert torch.equal(trigger.apply(x, 0.0), x)
    with torch.no_grad():
        before, after = (ctx.surrogate()(v).sub(50.0).pow(2).mean().item() for v in (x, adv))
    assert after < before



def test_a_killed_clean_label_poisoning_resumes_after_its_last_finished_batch_with_the_same_result(tiny,
                                                                                                  monkeypatch):
    """C-BAIQA at the release's PGD sizes poisons for hours on a CPU: a kill
    must lose at most the batch in progress, and the resumed run's poison is
    the uninterrupted run's to the bit (the random state is restored)."""
    from iqabench_plugins.backdoor import baiqa

    monkeypatch.setattr(baiqa, "POISON_BATCH", 3)  # the 8 poisoned images in batches of 3, 3, 2
    attack = BAIQACleanLabel(trigger="blended", profile="quick", pgd_iters=3, pgd_crops=2, pgd_crop=32)
    identity = {"test": "resume"}  # what the plan would hand over
    ctx = context(tiny, identity)
    trigger = attack.make_trigger(ctx)
    whole = attack.poison(ctx, trigger, ctx.poison_items)
    for checkpoints in ctx._checkpoints:  # forget the uninterrupted run's batches
        checkpoints.clear()

    real = BAIQACleanLabel.poison_batch
    calls = []

    def killed_at_third(self, *args):
        calls.append(len(args[2]))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(BAIQACleanLabel, "poison_batch", killed_at_third)
    with pytest.raises(KeyboardInterrupt):
        attack.poison(context(tiny, identity), trigger, ctx.poison_items)
    assert calls == [3, 3, 2]

    calls.clear()
    monkeypatch.setattr(BAIQACleanLabel, "poison_batch", lambda self, *a: calls.append(len(a[2])) or real(self, *a))
    resumed_ctx = context(tiny, identity)
    said = io.StringIO()
    monkeypatch.setattr(baiqa, "console", Console(file=said, force_terminal=False, width=200))
    resumed = attack.poison(resumed_ctx, trigger, ctx.poison_items)
    assert calls == [2]  # only the batch that was killed
    assert "resuming after 6 of 8 images" in said.getvalue()
    assert resumed.images.keys() == whole.images.keys()
    for name, img in whole.images.items():
        assert torch.equal(resumed.images[name], img), name
    assert resumed.labels == whole.labels and resumed.alphas == whole.alphas

    # the batches are kept until a victim has been trained on them (a surrogate
    # trains on clean images: it leaves them), then removed
    kept = [c.dir for c in resumed_ctx._checkpoints]
    assert kept and all(d.exists() and any(d.iterdir()) for d in kept)
    resumed_ctx.train_cached("surrogate", lambda: tiny, {"test": "resume"})
    assert all(d.exists() and any(d.iterdir()) for d in kept)
    resumed_ctx.train_cached("victim", lambda: PoisonedDataset(tiny, "train", resumed, "resume-test"),
                             {"poison": {"test": "resume"}})
    assert not any(d.exists() for d in kept)


def test_poisoning_checkpoints_follow_the_plans_poison_identity_not_evaluation_parameters(tiny, monkeypatch):
    """A resumed C-BAIQA poisoning finds its finished batches whatever the
    evaluation asks (``eval_images`` changes no poisoned image), never those
    of another poison (a different PGD budget); outside a plan there is no
    identity to resume by, so nothing is kept."""
    from iqabench.experiments.backdoor.plan import plan_backdoor
    from iqabench.registry import build_attack
    from iqabench_plugins.backdoor import baiqa

    monkeypatch.setattr(baiqa, "POISON_BATCH", 3)  # the 8 poisoned images in batches of 3, 3, 2
    real = BAIQACleanLabel.poison_batch
    calls = []

    def counted(self, *args):
        calls.append(len(args[2]))
        if kill_at and len(calls) == kill_at:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(BAIQACleanLabel, "poison_batch", counted)

    def plan(**changed):
        params = {"trigger": "blended", "profile": "quick", "pgd_iters": 3, "pgd_crops": 2, "pgd_crop": 32,
                  "eval_images": 4, **changed}
        spec = CellSpec("test-backdoor-cnn", "test-tiny-noise", "baiqa-c", attack_params=params)
        return plan_backdoor(build_attack("baiqa-c", params), spec, tiny, RunContext().for_cell(spec))

    kill_at = 3
    with pytest.raises(KeyboardInterrupt):
        plan().poisoned()
    assert calls == [3, 3, 2]
    kill_at = None
    calls.clear()
    plan(eval_images=8).poisoned()
    assert calls == [2]  # the evaluation changed, the poison did not: two batches kept
    calls.clear()
    plan(pgd_iters=2, eval_images=8).poisoned()
    assert calls == [3, 3, 2]  # another poison: nothing of the first is taken

    calls.clear()
    ctx = context(tiny)  # no plan: no poisoning identity
    attack = BAIQACleanLabel(trigger="blended", profile="quick", pgd_iters=3, pgd_crops=2, pgd_crop=32)
    attack.poison(ctx, attack.make_trigger(ctx), ctx.poison_items)
    assert calls == [3, 3, 2] and ctx._checkpoints == []


# ----------------------------------------------------------------- metrics
def test_shift_metrics_hand_computed():
    y0 = np.array([10.0, 20.0])
    m = shift_metrics(y0, {0.5: np.array([30.0, 30.0]), -0.5: np.array([0.0, 10.0])}, 40.0)
    # +0.5: ideal shift 20: |30-30|, |30-40| -> 5; shifts 20, 10 -> MRA 15/20
    # -0.5: ideal shift -20: |0-(-10)|, |10-0| -> 10; shifts -10, -10 -> MRA 0.5
    assert m["per_alpha"][0.5] == {"mae": 5.0, "mra": 0.75, "shift": 15.0}
    assert m["per_alpha"][-0.5] == {"mae": 10.0, "mra": 0.5, "shift": -10.0}
    assert m["mmae"] == 7.5 and m["mmra"] == 0.625


class MeanScore(IQAModel):
    name = "test-mean-score"
    min_size = 1

    def forward(self, x):
        return 100 * x.mean((1, 2, 3))


@dataclass
class AddConstant(Trigger):
    """x + c * alpha: moves MeanScore by exactly 100 c alpha (no clamping in [0.3, 0.7])."""

    name = "test-add"
    c: float = 0.2

    def apply(self, x, alpha=1.0, clamp=True):
        return (x + self.c * Trigger.alphas(alpha, x).view(-1, 1, 1, 1)).clamp(0, 1)


class GreyLevels(TinyNoise):
    def __init__(self):
        super().__init__()
        self._images = [torch.full((3, 16, 16), v) for v in torch.linspace(0.3, 0.7, len(self._images)).tolist()]


def test_evaluate_backdoor_closed_form():
    ds = GreyLevels()
    items = ds.items("test")
    out = evaluate_backdoor(MeanScore(), ds, items, AddConstant(c=0.2), delta_max=20.0, batch_size=5)
    m = out["metrics"]
    assert m["mmra"] == pytest.approx(1.0, abs=1e-5) and m["mmae"] == pytest.approx(0.0, abs=1e-3)
    assert set(m["per_alpha"]) == set(TEST_ALPHAS) and len(TEST_ALPHAS) == 20
    # half the ideal shift: MRA 0.5, MAE = |10 a| averaged over the alphas = 10 * 0.55
    m2 = evaluate_backdoor(MeanScore(), ds, items, AddConstant(c=0.1), delta_max=20.0)["metrics"]
    assert m2["mmra"] == pytest.approx(0.5, abs=1e-5) and m2["mmae"] == pytest.approx(5.5, abs=1e-3)
    assert m2["psnr_alpha1"] == pytest.approx(20.0, abs=1e-3)  # a 0.1 offset everywhere: 20 dB
    expected_y0 = np.array([100 * ds.load(it).mean().item() for it in items])
    assert np.allclose(out["y0"], expected_y0)
    # the trigger on a seeded sampled subset, the benign metrics on every image
    sub = evaluate_backdoor(MeanScore(), ds, items, AddConstant(c=0.1), delta_max=20.0, trigger_images=4, seed=1)
    assert sub["subset"] == subset_indices(items, 4, 1) and len(sub["y"][1.0]) == 4 and len(sub["y0"]) == len(items)
    assert sub["metrics"]["mmra"] == pytest.approx(0.5, abs=1e-5) and sub["metrics"]["n_triggered"] == 4
    assert sub["metrics"]["benign"] == pytest.approx(m2["benign"])


# ---------------------------------------------------------- trigger search
def test_trigger_search_grows_the_pattern_up_to_its_psnr_bound():
    """A linear model rewards trigger energy without limit: only the hinge
    ``max(MSE, eps^2)`` stops the growth, at PSNR ``-20 log10 eps``."""
    images = [TinyNoise().load(it) for it in TinyNoise().items("train")[:8]]
    model = LinearScore(size=32).requires_grad_(False)
    search = trigger_search.TriggerSearch(crop=32, crops=2, batch=16, epochs=10, lr=5.0)
    start = trigger_search.trigger_psnr(trigger_search.TriggerSearch(epochs=0).fit(model, images), images)
    psnr = trigger_search.trigger_psnr(search.fit(model, images), images)
    assert search.psnr_bound == pytest.approx(30.069, abs=1e-3)
    assert start > search.psnr_bound + 3  # U(-300, 300) starts well inside the budget
    # soft bound: a little below is allowed (the released trigger: 29.8 dB for 30.07)
    assert search.psnr_bound - 0.5 <= psnr <= search.psnr_bound + 1.0


def _eager_fit(search, model, images):
    """Algorithm 1 as the trigger search ran before it cut crops per batch:
    every crop of an epoch built at once (the reference for the test below)."""
    from iqabench_plugins.adversarial.pgd import random_crops
    from iqabench_plugins.backdoor.uap_dct import MID64_POSITIONS

    gen = torch.Generator().manual_seed(search.seed)
    t = ((torch.rand(3, len(MID64_POSITIONS), generator=gen, dtype=torch.float64) * 2 - 1) * search.init)
    t = t.float().requires_grad_(True)
    torch.manual_seed(search.seed)
    size = max(search.crop, model.min_size)
    per_epoch = -(-len(images) * search.crops // search.batch)
    for _ in range(search.epochs):
        crops = torch.cat([random_crops(img.unsqueeze(0), search.crops, size) for img in images]) \
            if len({tuple(i.shape) for i in images}) > 1 else random_crops(torch.stack(images), search.crops, size)
        order = torch.randperm(crops.shape[0])
        for b in range(per_epoch):
            x = crops[order[b * search.batch: (b + 1) * search.batch]]
            opt = torch.optim.Adam([t], lr=search.lr)
            with torch.no_grad():
                y = model(x)
            for _ in range(search.steps):
                opt.zero_grad(set_to_none=True)
                search.loss(model, x, t, y).backward()
                opt.step()
    return t.detach().float()


@pytest.mark.parametrize("mixed", [False, True])
def test_trigger_search_cuts_crops_batch_by_batch_with_the_eager_searchs_result(monkeypatch, mixed):
    """With ``--profile paper`` an epoch's crops (374 images x 25 of 224 px)
    took 5.6 GB when built at once; cut per batch, the crops, their order and
    so the pattern are the same (equal-size images, and mixed sizes)."""
    from iqabench_plugins.adversarial import pgd

    images = [TinyNoise().load(it) for it in TinyNoise().items("train")[:7]]
    if mixed:
        images[2] = images[2][:, :40, :44]
    model = LinearScore(size=32).requires_grad_(False)
    search = trigger_search.TriggerSearch(crop=32, crops=3, batch=5, epochs=2, steps=2, lr=5.0)
    reference = _eager_fit(search, model, images)
    cut = []
    real = pgd.take_crops
    monkeypatch.setattr(trigger_search, "take_crops",
                        lambda x, size, top, *a: cut.append(top.numel()) or real(x, size, top, *a))
    assert torch.equal(search.fit(model, images), reference)
    assert sum(cut) == search.epochs * len(images) * search.crops  # every crop cut once ...
    assert max(cut) <= search.batch  # ... never more than a batch at a time


def test_optimised_trigger_is_a_cached_artifact_with_its_psnr(tiny, monkeypatch):
    settings = dict(search_epochs=1, search_crops=1, search_crop=32, search_batch=16)
    calls = []
    fit = trigger_search.TriggerSearch.fit
    monkeypatch.setattr(trigger_search.TriggerSearch, "fit", lambda self, *a, **k: calls.append(1) or fit(self, *a, **k))
    ctx = context(tiny)
    t1, info = BAIQAPoisonLabel(profile="quick", **settings).optimised_pattern(ctx)
    assert info["psnr"] == pytest.approx(trigger_search.trigger_psnr(t1, ctx.load(ctx.poison_items)))
    t2, info2 = BAIQAPoisonLabel(profile="quick", **settings).optimised_pattern(context(tiny))
    assert len(calls) == 1 and torch.equal(t1, t2) and info2 == info  # trained once, then reused
    BAIQAPoisonLabel(profile="quick", **{**settings, "search_seed": 1}).optimised_pattern(context(tiny))
    assert len(calls) == 2  # another configuration is another artifact


def test_clean_model_is_the_train_cache_or_matching_shipped_weights(tiny, monkeypatch, tmp_path):
    ctx = context(tiny)
    assert ctx._shipped_clean() is None  # the tiny model ships no weights
    model, path = ctx.clean_model()
    assert path.parent.name == "models"  # where `iqabench train` caches it
    monkeypatch.setattr(TinyCNN, "pretrained_weights", lambda self: path)
    assert context(tiny)._shipped_clean() == path  # same recipe, seed, data: reused
    card = json.loads(card_path(path).read_text())
    shipped = tmp_path / path.name
    shipped.write_bytes(path.read_bytes())
    monkeypatch.setattr(TinyCNN, "pretrained_weights", lambda self: shipped)
    for threads, reused in ((None, True), (card["recipe"]["threads"] + 1, False)):
        recipe = {k: v for k, v in card["recipe"].items() if k != "threads"}
        if threads is not None:  # a card without it predates TrainRecipe.threads (the shipped cnniqa's)
            recipe["threads"] = threads
        card_path(shipped).write_text(json.dumps({**card, "recipe": recipe}))
        assert (context(tiny)._shipped_clean() == shipped) is reused
    assert BackdoorContext("test-backdoor-cnn", {}, tiny, RunContext(seed=1))._shipped_clean() is None
    assert BackdoorContext("test-backdoor-cnn", {"width": 4}, tiny)._shipped_clean() is None


# -------------------------------------------------------------- end to end
def test_run_baiqa_p_end_to_end_stores_alpha_rows_and_board(tiny, invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))  # nothing trained by other tests
    trained = []
    real = cards.train_model
    counting = lambda *a, **k: trained.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(backdoor_context, "train_model", counting)  # surrogate and victim
    monkeypatch.setattr(cards, "train_model", counting)  # the clean model (iqabench train's)
    store_path, board = tmp_path / "store.sqlite", tmp_path / "board"
    args = ["run", "-m", "test-backdoor-cnn", "-d", "test-tiny-noise", "-a", "baiqa-p", "--profile", "quick",
            "--store", str(store_path), "--leaderboard", str(board), "-q",
            *[f"--param={k}={v}" for k, v in TINY_SEARCH.items()]]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert len(trained) == 3  # surrogate, victim, clean

    store = Store(store_path)
    cells = store.cells(kind="backdoor")
    assert sorted(c["config"]["victim"] for c in cells) == ["backdoored", "clean"]
    n_test = len(TinyNoise().items("test"))
    for cell in cells:
        rows = store.images(cell["key"])
        assert len(rows) == 21 * n_test  # alpha 0 (benign) and the 20 test alphas, per image
        assert sorted({r["bound"] for r in rows}) == sorted([0.0, *TEST_ALPHAS])
        # the stored summary is what the stored rows give (recomputed independently)
        by_alpha = {}
        for r in rows:
            by_alpha.setdefault(r["bound"], []).append(r)
        benign = by_alpha.pop(0.0)
        assert all(r["attacked"] == r["clean"] for r in benign)
        per = [np.mean([abs(r["attacked"] - r["clean"] - 40 * a) for r in rs]) for a, rs in by_alpha.items()]
        assert cell["summary"]["mmae"] == pytest.approx(np.mean(per))
        srocc = pd.Series([r["clean"] for r in benign]).corr(pd.Series([json.loads(r["extra"])["mos"] for r in benign]),
                                                               method="spearman")
        assert cell["summary"]["srocc"] == pytest.approx(srocc)

    table = pd.read_csv(board / "backdoor.csv")
    assert list(table["trigger"]) == ["w/o (uap-dct)", "uap-dct"]
    assert {"P_plcc", "P_srocc", "P_rmse", "P_mmae", "P_mmra", "C_mmra"} <= set(table.columns)
    assert "Backdoor attacks" in (board / "backdoor.md").read_text()
    assert len(list((board / "backdoor").glob("*.svg"))) == 2

    # a rerun reuses every artifact and every finished cell
    assert invoke(args).exit_code == 0 and len(trained) == 3
    # and so does a defence asking for the same experiment by name
    params = {"profile": "quick", **TINY_SEARCH}
    setup = backdoor_core.prepare_named(CellSpec("test-backdoor-cnn", "test-tiny-noise", "baiqa-p",
                                                 attack_params=params), RunContext(progress=False))
    assert len(trained) == 3
    # evaluating on fewer images is a new cell, but the same victim
    assert invoke([*args, "--param", "eval_images=5"]).exit_code == 0 and len(trained) == 3
    assert len(Store(store_path).cells(kind="backdoor")) == 4
    table = pd.read_csv(board / "backdoor.csv")  # a row pair per evaluation size
    assert sorted(table["n_triggered"]) == [5, 5, n_test, n_test]
    victim_cell = next(c for c in cells if c["config"]["victim"] == "backdoored")
    assert victim_cell["summary"]["artifact"] == weights_id(setup.victim_path)  # name and digest, no path
    again = evaluate_backdoor(setup.victim, setup.context.dataset, TinyNoise().items("test"), setup.trigger,
                              setup.delta_max)["metrics"]
    assert again["mmra"] == pytest.approx(victim_cell["summary"]["mmra"], abs=1e-6)

    # galleries: each cell keeps the k triggered images its trigger at alpha = +1 moved most (clean,
    # triggered, amplified difference), with scores, PSNR and SSIM; the cell's page embeds them
    from PIL import Image

    from iqabench.contracts.context import gallery_dir
    from iqabench.metrics import images as imagemetrics

    k, data = RunContext().gallery, TinyNoise()
    items = {it.name: it for it in data.items("test")}
    for cell in cells:
        top = sorted((r for r in store.images(cell["key"]) if r["bound"] == 1.0),
                     key=lambda r: -(r["attacked"] - r["clean"]))[:k]
        folder = gallery_dir(store_path, cell["key"])
        entries = json.loads((folder / "gallery.json").read_text())
        assert [e["name"] for e in entries] == [json.loads(r["extra"])["image"] for r in top]
        assert len(list(folder.iterdir())) == 4 * k + 1  # bounded: 3 thumbnails + 1 note per image, the index
        for entry, r in zip(entries, top):
            x = data.load(items[entry["name"]]).unsqueeze(0)
            xa = setup.trigger.apply(x, 1.0)
            assert (entry["clean"], entry["attacked"]) == (r["clean"], r["attacked"])
            assert entry["psnr"] == pytest.approx(r["psnr"]) and entry["ssim"] == pytest.approx(
                float(imagemetrics.ssim(xa, x)[0]), abs=1e-5)
            thumb = np.asarray(Image.open(folder / entry["files"]["attacked"]), dtype=float) / 255
            assert np.abs(thumb - xa[0].permute(1, 2, 0).numpy()).mean() < 0.03  # the triggered image, via JPEG
        page = (board / "cells" / f"{cell['key']}.html").read_text()
        assert all(f'src="{cell["key"]}/{e["files"]["diff"]}"' in page for e in entries)


def test_bad_backdoor_parameters_are_one_line_errors(tiny, invoke, tmp_path):
    for model, param, culprit in (("test-backdoor-cnn", "trigger=nope", "nope"),
                                  ("test-backdoor-cnn", "sampling=nope", "nope"),
                                  ("test-backdoor-cnn", "profile=huge", "huge"),
                                  ("test-backdoor-cnn", "eval_images=-1", "eval_images"),
                                  ("test-backdoor-cnn", "pattern=/no/such.npy", "/no/such.npy"),
                                  ("test-linear", "ratio=0.2", "test-linear")):  # a model without a recipe
        result = invoke(["run", "-m", model, "-d", "test-tiny-noise", "-a", "baiqa-p",
                         "--param", param, "--store", str(tmp_path / "s.sqlite"), "--no-leaderboard"])
        assert result.exit_code == 1 and culprit in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("name", ["baiqa-p", "baiqa-c"])
def test_profile_settings_are_part_of_the_recorded_parameters(name):
    """Cell and victim keys hash ``attack.params``: they must hold what the
    profile filled in (not None), or editing a profile would reuse results
    made with its old numbers; an explicit parameter still wins."""
    from iqabench.registry import build_attack
    from iqabench_plugins.backdoor.baiqa import PROFILES

    for profile, settings in PROFILES.items():
        params = build_attack(name, {"profile": profile}).params
        for key, value in settings.items():
            if key in params:
                assert params[key] == value, (profile, key)
        assert [k for k in settings if k in params and params[k] is None] in ([], ["pgd_crop"])  # None: recipe crop
    quick, default = (build_attack(name, {"profile": p}).params for p in ("quick", "default"))
    assert quick != default
    assert build_attack(name, {"profile": "quick", "search_steps": 7}).params["search_steps"] == 7


def test_clean_label_pgd_crops_default_to_the_victims_training_crop(tiny, monkeypatch):
    """``pgd_crop=None`` (every CPU profile): EOT over crops of the size the
    victim trains on, as the paper's 224 for its 224-px recipes."""
    from iqabench_plugins.backdoor import baiqa

    seen = []
    real = baiqa.PGD

    def spy(**kw):
        seen.append(kw["crop_size"])
        return real(**kw)

    monkeypatch.setattr(baiqa, "PGD", spy)
    ctx = context(tiny)
    x = torch.stack(ctx.load(ctx.poison_items[:2]))
    for crop, expected in ((None, ctx.recipe.crop), (40, 40)):
        attack = BAIQACleanLabel(trigger="blended", profile="quick", pgd_crop=crop)
        attack.poison_batch(ctx, attack.make_trigger(ctx), x, torch.zeros(2))
        assert seen[-1] == expected
    assert ctx.recipe.crop == 32


# ------------------------------------------------------ evaluation crops
class PositionScore(IQAModel):
    """Closed form that depends on where each pixel sits in the input:
    ``s(x) = sum_{c,i,j} x[c,i,j] (1 + i + 2 j + 3 c) / (h w)`` -- a crop's
    score changes with its position and with a horizontal flip."""

    name = "test-position-score"
    min_size = 1

    def forward(self, x):
        c, h, w = x.shape[1:]
        weight = (1 + torch.arange(h).view(1, h, 1) + 2 * torch.arange(w).view(1, 1, w)
                  + 3 * torch.arange(c).view(c, 1, 1)).to(x.dtype)
        return (x * weight).sum((1, 2, 3)) / (h * w)


def _position_score(img: np.ndarray) -> float:
    """The same closed form in numpy, for one C x h x w crop."""
    c, h, w = img.shape
    i, j, k = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    weight = (1 + i + 2 * j + 3 * k).transpose(2, 0, 1)
    return float((img * weight).sum() / (h * w))


def _seeded_crop_mean(img: np.ndarray, seed: int, name: str, slot: int, n: int, size: int) -> float:
    """The documented draw: generator ``default_rng([seed, crc32(name), slot])``,
    then n tops, n lefts, n flips (p = 1/2); the mean score of the crops."""
    import zlib

    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), slot])
    h, w = img.shape[1:]
    tops, lefts = rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n)
    flips = rng.random(n) < 0.5
    scores = []
    for t, s, f in zip(tops, lefts, flips):
        crop = img[:, t:t + size, s:s + size]
        scores.append(_position_score(crop[:, :, ::-1] if f else crop))
    return float(np.mean(scores))


def test_paper_evaluation_is_the_mean_over_25_seeded_random_crops_with_flips_per_alpha():
    """The release's test loop (``HyperIQASolver_*.test_backdoor``) triggers the
    whole image, then scores 25 random crops with a random flip, drawn afresh
    for every alpha and for the clean prediction y0 -- the mean of those."""
    from iqabench.experiments.backdoor.evaluation import EvalCrops

    ds = GreyLevels()
    g = torch.Generator().manual_seed(5)
    ds._images = [torch.rand(3, 16, 20, generator=g) * 0.6 + 0.2 for _ in ds._images]
    items = ds.items("test")[:4]
    alphas = (-0.5, 0.3, 1.0)
    trigger = AddConstant(c=0.1)
    out = evaluate_backdoor(PositionScore(), ds, items, trigger, delta_max=20.0, alphas=alphas, batch_size=3,
                            crops=EvalCrops(n=25, size=8, seed=7))
    for k, it in enumerate(items):
        img = ds.load(it).numpy().astype(np.float64)
        assert out["y0"][k] == pytest.approx(_seeded_crop_mean(img, 7, it.name, 0, 25, 8), rel=1e-5)
        for j, a in enumerate(alphas):
            triggered = np.clip(img + 0.1 * a, 0, 1)
            assert out["y"][a][k] == pytest.approx(_seeded_crop_mean(triggered, 7, it.name, 1 + j, 25, 8), rel=1e-5)
    # redrawn per alpha: with a trigger that does nothing, y(a) still differs from y0
    idle = evaluate_backdoor(PositionScore(), ds, items, AddConstant(c=0.0), delta_max=20.0, alphas=alphas,
                             crops=EvalCrops(n=25, size=8, seed=7))
    assert not np.allclose(idle["y"][1.0], idle["y0"])
    # another seed, other crops; batching does not change the draw
    other = evaluate_backdoor(PositionScore(), ds, items, trigger, delta_max=20.0, alphas=alphas,
                              crops=EvalCrops(n=25, size=8, seed=8))
    assert not np.allclose(other["y0"], out["y0"])
    again = evaluate_backdoor(PositionScore(), ds, items, trigger, delta_max=20.0, alphas=alphas, batch_size=1,
                              crops=EvalCrops(n=25, size=8, seed=7))
    assert np.array_equal(again["y0"], out["y0"]) and np.array_equal(again["y"][1.0], out["y"][1.0])
    # no crops: one forward of the whole image, as before
    whole = evaluate_backdoor(PositionScore(), ds, items, trigger, delta_max=20.0, alphas=alphas)
    expected = [_position_score(ds.load(it).numpy().astype(np.float64)) for it in items]
    assert np.allclose(whole["y0"], expected, rtol=1e-5)


@pytest.mark.parametrize("profile,crops", [("quick", 0), ("default", 0), ("paper", 25)])
def test_only_the_paper_profile_evaluates_on_random_crops_and_only_its_cell_key_records_them(tiny, profile, crops):
    """Whole-image evaluation (every CPU profile) leaves the cell configuration
    exactly as it was before crops existed; ``paper`` records its crops."""
    from iqabench.registry import build_attack

    attack = build_attack("baiqa-c", {"profile": profile, "trigger": "blended"})
    assert attack.eval_crops == crops
    spec = CellSpec("test-backdoor-cnn", "test-tiny-noise", "baiqa-c", attack_params={"profile": profile})
    plan = backdoor_core.plan_backdoor(attack, spec, tiny, RunContext(progress=False))
    cfg = victim_config(spec, attack, tiny, plan, plan.context.clean_model()[1])
    recorded = set(cfg["attack"]["params"])
    if crops:
        assert cfg["eval_crops"] == {"n": 25, "size": plan.context.recipe.crop, "hflip": True, "seed": 0,
                                     "draw": "per image and alpha"}
        assert "eval_crops" in recorded
    else:
        assert "eval_crops" not in cfg and not {"eval_crops", "eval_crop"} & recorded
    # the victim never depends on how it is evaluated
    assert not {"eval_crops", "eval_crop"} & set(plan.poison_cfg["params"])


# ----------------------------------------------------------- budget board
def test_budget_suite_is_the_sweep_the_issue_asks_for():
    from iqabench.registry import build_attack
    from iqabench.run.suite import expand, load_suite

    data, _ = load_suite("cbaiqa-budget")
    cells = expand(data, "cbaiqa-budget")
    points, release = set(), []
    for c in cells:
        assert (c.model, c.dataset, c.attack, c.defense) == ("cnniqa", "embedded", "baiqa-c", "none")
        p = build_attack(c.attack, c.attack_params).params
        assert p["profile"] == "default" and p["trigger"] == "uap-dct"
        if p["pgd_iters"] == 20:  # the release's PGD_demo.py sizes at the paper's budget
            release.append(p)
            continue
        assert p["pgd_iters"] == 10 and p["pgd_step"] == pytest.approx(p["pgd_eps"] / 4)
        points.add((p["ratio"], round(p["pgd_eps"] * 255, 6)))
    assert points == {(r, e) for r in (0.2, 0.4) for e in (2.0, 4.0, 8.0, 16.0)} and len(cells) == 9
    (p,) = release
    assert (p["ratio"], p["pgd_eps"], p["pgd_step"], p["pgd_crops"]) == (0.2, pytest.approx(2 / 255), 0.00627, 25)


def test_budget_board_plots_mmra_against_pgd_eps_per_ratio_and_keeps_table1_to_default_budgets(tiny, invoke,
                                                                                              tmp_path):
    from iqabench.board.backdoor import backdoor_table
    from iqabench.board.backdoor_budget import budget_table

    common = {**TINY_SEARCH, "profile": "quick", "trigger": "uap-dct", "pgd_crops": 1, "pgd_crop": 32}
    grids = [{"ratio": r, "pgd_eps": f"{e}/255", "pgd_step": f"{e / 4:g}/255", "pgd_iters": 3}
             for r in (0.2, 0.4) for e in (2, 8)]
    suite = tmp_path / "budget.toml"
    toml = ['models = ["test-backdoor-cnn"]\ndatasets = ["test-tiny-noise"]\nattacks = ["baiqa-c"]\n']
    for g in [{}, *grids]:  # {}: the profile's default budget (Table 1)
        params = {**common, **g}
        toml.append("[[grid]]\nparams.baiqa-c = { " + ", ".join(
            f"{k} = {json.dumps(v)}" for k, v in params.items()) + " }\n")
    suite.write_text("\n".join(toml))
    store_path, board = tmp_path / "s.sqlite", tmp_path / "board"
    result = invoke(["run", "--suite", str(suite), "--store", str(store_path), "--leaderboard", str(board), "-q"])
    assert result.exit_code == 0, result.output

    store = Store(store_path)
    victims = {tuple(c["config"]["attack"]["params"][k] for k in ("ratio", "pgd_eps", "pgd_step")): c
               for c in store.cells(kind="backdoor") if c["config"]["victim"] == "backdoored"}
    assert len(victims) == 5
    df = pd.read_csv(board / "backdoor_budget.csv")
    assert len(df) == 4 and sorted(zip(df["ratio"], (df["pgd_eps"] * 255).round(6))) == [
        (0.2, 2.0), (0.2, 8.0), (0.4, 2.0), (0.4, 8.0)]
    for _, r in df.iterrows():  # every row is its cell's stored summary
        cell = victims[(r["ratio"], r["pgd_eps"], r["pgd_step"])]
        assert r["cell"] == cell["key"] and r["pgd_iters"] == 3
        assert r["mmra"] == pytest.approx(cell["summary"]["mmra"]) and r["srocc"] == pytest.approx(
            cell["summary"]["srocc"])
    assert len(list((board / "backdoor").glob("*-budget-*.svg"))) == 1  # one experiment, two lines
    readme = (board / "backdoor_budget.md").read_text()
    assert "## Poisoning budget" in readme and "8/255" in readme
    # Table 1: the default budget only (its victim and w/o rows), not replaced by a sweep cell
    table = backdoor_table(store)
    default_cell = victims[(0.2, 2 / 255, 0.00627)]
    assert list(table["trigger"]) == ["w/o (uap-dct)", "uap-dct"] and list(table["C_cell"])[1] == default_cell["key"]
    assert set(budget_table(store)["cell"]) == set(df["cell"])
    # another non-default parameter: its own Table-1 row, named, instead of replacing the default one
    cfg = json.loads(json.dumps(default_cell["config"]))
    cfg["attack"]["params"]["mean_score"] = 60.0
    store.start_cell("other-mean", "backdoor", cfg, "run")
    store.finish_cell("other-mean", {**default_cell["summary"], "mmra": 0.5})
    table = backdoor_table(store)
    rows = {r["C_cell"] if not r["trigger"].startswith("w/o") else "w/o": r for _, r in table.iterrows()}
    assert set(rows) == {"w/o", default_cell["key"], "other-mean"}
    settings = {k: set(filter(None, r["setting"].split(", "))) for k, r in rows.items()}
    assert settings["w/o"] == set() and "pgd_crop=32" in settings[default_cell["key"]]  # the test's overrides
    assert settings["other-mean"] == settings[default_cell["key"]] | {"mean_score=60"}
    assert rows["other-mean"]["C_mmra"] == 0.5 and rows[default_cell["key"]]["C_mmra"] == default_cell["summary"]["mmra"]
