"""Cell keys and artifact keys never change.

A stored result and a cached artifact are found again only by the hash of
the configuration that produced them (``config_key``).  A change that moved
one byte of a configuration -- a renamed or reordered field, a value
recorded in another form -- would orphan every existing store and cache:
a rerun would recompute hours of benchmark, or the board would show old and
new cells side by side.  This test runs representative cells -- adversarial
(full and ``--limit``), universal at its three amplitudes, backdoor P and C,
adversarial and backdoored models defended with NT, fine-tuning and pruning
(with the like-for-like baselines the runner adds) -- on a probe model and
dataset and compares every cell key in the store and every file name in the
artifact cache with the values the code produced before the core was
reorganised into subpackages (issue 13; see ``CELL_KEYS``).

Nothing here trains for real: the probe's recipe takes one step at learning
rate 0, so every "trained" weights file (surrogate, victim, clean model,
defended model) holds the probe's fixed initial weights, and the weights
digests that enter cell keys are the same on every machine; the probe's
images are exact rationals.  NEVER edit the pinned values to make this test
pass: a difference means a change altered what a key covers.  A change that
alters what a configuration computes must change its key on purpose -- then
list it in ``CHANGED_ON_PURPOSE`` (old value, new value, why), do not
rewrite the pins.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from iqabench.artifacts import config_key
from iqabench.contracts import IQADataset, IQAModel, Item, TrainRecipe
from iqabench.hookspecs import hookimpl


class KeyProbe(IQAModel):
    """A 3x3 convolution and a linear head with fixed (not random) weights;
    channel ``c``'s filter is ``c + 1`` times the first, so a pruning
    defence ranks the channels without ties."""

    name = "key-probe"
    min_size = 8

    def __init__(self, width: int = 4):
        super().__init__()
        self.width = width
        self.conv = nn.Conv2d(3, width, 3)
        self.head = nn.Linear(width, 1)
        with torch.no_grad():
            base = (torch.arange(27, dtype=torch.float32).reshape(3, 3, 3) % 7 - 3) / 16
            self.conv.weight.copy_(torch.stack([(c + 1) * base for c in range(width)]))
            self.conv.bias.zero_()
            self.head.weight.copy_(torch.arange(1, width + 1, dtype=torch.float32).view(1, -1) / 8)
            self.head.bias.fill_(0.5)

    def forward(self, x):
        return 50 + 10 * self.head(torch.relu(self.conv(x)).mean((2, 3))).squeeze(1)

    def recipe(self, profile: str = "default") -> TrainRecipe:
        return TrainRecipe(epochs=1, lr=0.0, batch_size=4, crop=16, extra={"steps_per_epoch": 1})


class KeyProbeData(IQADataset):
    """24x24 images of exact rationals: 12 train, 8 test, three contents, two groups."""

    name = "key-probe-data"
    mos_range = (0.0, 100.0)
    SIZES = {"train": 12, "test": 8}

    def __init__(self, size: int = 24):
        self.size = size
        self._items: dict[str, list[Item]] = {}
        index = 0
        for split, n in self.SIZES.items():
            self._items[split] = [Item(f"{split}{i:02d}", float(10 + 7 * i), index + i, f"ref{i % 3}",
                                       ("pristine", "noise")[i % 2]) for i in range(n)]
            index += n

    def splits(self):
        return list(self.SIZES)

    def items(self, split):
        return self._items[split]

    def load(self, item):
        c, y, x = torch.meshgrid(torch.arange(3), torch.arange(self.size), torch.arange(self.size), indexing="ij")
        return ((item.source * 7 + c * 11 + y * 3 + x * 5) % 17).float() / 16

    def fingerprint(self):
        return f"{self.name}-{self.size}"


class KeyProbePlugin:
    @hookimpl
    def register_models(self, register):
        register(KeyProbe)

    @hookimpl
    def register_datasets(self, register):
        register(KeyProbeData)


def probe_cells():
    """The representative cells (as ``iqabench run`` would expand them)."""
    from iqabench.contracts import CellSpec

    def cell(attack, params=None, **kw):
        return CellSpec(model="key-probe", dataset="key-probe-data", attack=attack, batch_size=4,
                        attack_params=dict(params or {}), **kw)

    backdoor = {"profile": "quick", "eval_images": 4}
    return [
        cell("ifgsm", {"eps": "4/255", "iters": "2"}),
        cell("fgsm", limit=6, seed=1),
        cell("uap", {"size": "16", "epochs": "1"}, limit=6, train_limit=8),
        cell("fgsm", defense="nt", defense_params={"lam": "0.01"}),
        cell("fgsm", defense="finetune", defense_params={"fraction": "0.5"}),
        cell("fgsm", defense="prune", defense_params={"rate": "0.5"}),
        cell("baiqa-p", {**backdoor, "trigger": "blended"}),
        cell("baiqa-c", {**backdoor, "trigger": "ftrojan", "pgd_iters": "1"}),
        cell("baiqa-p", {**backdoor, "trigger": "blended"}, defense="prune", defense_params={"rate": "0.5"}),
        cell("baiqa-p", {**backdoor, "trigger": "blended"}, defense="nt", defense_params={"lam": "0.01"}),
    ]


def label(config: dict) -> str:
    """A readable name for a stored cell (unique among the probe cells)."""
    attack, defense = config["attack"], config.get("defense") or {}
    parts = [config["kind"], attack["name"]]
    if "trigger" in attack:
        parts.append(f"[{attack['trigger']}]")
    if "amplitude" in attack:
        parts.append(f"@{attack['amplitude']}")
    if config.get("victim"):
        parts.append(config["victim"])
    if defense:
        parts.append("+" + defense["name"] + "".join(f" {k}={v}" for k, v in sorted(defense["params"].items())
                                                     if k in ("lam", "rate", "fraction")))
    parts.append(f"limit={config['dataset']['limit']} seed={config['seed']}")
    return " ".join(parts)


def run_probe(store: Path) -> tuple[dict[str, str], list[str]]:
    """Run the probe cells into ``store``; returns {label: cell key} and the
    artifact files (relative to ``$IQABENCH_CACHE``)."""
    import os

    from iqabench.run.runner import Runner, open_run

    runner = Runner(open_run(store, progress=False))
    runner.run(probe_cells())
    cells = runner.store.cells(status=None)
    keys = {label(c["config"]): c["key"] for c in cells}
    assert len(keys) == len(cells), "two probe cells share a label"
    for c in cells:
        assert c["status"] == "done"
        assert config_key(c["config"]) == c["key"], "a cell's key is the hash of its stored configuration"
    root = Path(os.environ["IQABENCH_CACHE"])
    artifacts = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return keys, artifacts


# Computed by the code of main at 6991b51, before issue 13's reorganisation
# was merged: 3af8e95's keys, except the four defended adversarial cells and
# the range of the model that is its own baseline (NT at lam = 0), which
# 6991b51 changed on purpose (a defended model is normalised with its
# baseline's range, recorded as ``normalised_by``).  They must never change:
# see the module docstring.
CELL_KEYS = {
    'adversarial ifgsm limit=0 seed=0': '88f47390000e067f',
    'adversarial fgsm limit=6 seed=1': 'b46d8140e2ffe6f4',
    'universal uap @0.2 limit=6 seed=0': '24706407f203af44',
    'universal uap @0.4 limit=6 seed=0': '693d685c3df8d936',
    'universal uap @0.8 limit=6 seed=0': '75d9ee2f613446bc',
    'adversarial fgsm +nt lam=0.0 limit=0 seed=0': '6d643cd1e67ba589',
    'adversarial fgsm +nt lam=0.01 limit=0 seed=0': '62ffad80bda6a35b',
    'adversarial fgsm limit=0 seed=0': '2b326eb52421068d',
    'adversarial fgsm +finetune fraction=0.5 limit=0 seed=0': 'd7eeef1e7ca10b5a',
    'adversarial fgsm +prune fraction=0.2 rate=0.5 limit=0 seed=0': 'b1c7e7ba87003090',
    'backdoor w/o [blended] clean limit=0 seed=0': '3cce6acfc04af9f3',
    'backdoor baiqa-p [blended] backdoored limit=0 seed=0': '565ccc7a80023c54',
    'backdoor w/o [ftrojan] clean limit=0 seed=0': '5244a8731a74f3e3',
    'backdoor baiqa-c [ftrojan] backdoored limit=0 seed=0': 'd89ec96e3d3a6ae3',
    'backdoor baiqa-p [blended] backdoored +prune fraction=0.2 rate=0.5 limit=0 seed=0': 'dee3dbf0cfaa8638',
    'backdoor baiqa-p [blended] backdoored +nt lam=0.0 limit=0 seed=0': '9f8e8430d2a08ae7',
    'backdoor baiqa-p [blended] backdoored +nt lam=0.01 limit=0 seed=0': '75e25b803acc2206',
}

ARTIFACTS = [
    'defended/key-probe-finetune-b85dc51b84e699da.card.json',
    'defended/key-probe-finetune-b85dc51b84e699da.safetensors',
    'defended/key-probe-nt-4d85c9d5c85a3c02.card.json',
    'defended/key-probe-nt-4d85c9d5c85a3c02.safetensors',
    'defended/key-probe-nt-77975e2b2097b17f.card.json',
    'defended/key-probe-nt-77975e2b2097b17f.safetensors',
    'defended/key-probe-nt-a559af39cd4f77c5.card.json',
    'defended/key-probe-nt-a559af39cd4f77c5.safetensors',
    'defended/key-probe-nt-e6801a95e2afd52e.card.json',
    'defended/key-probe-nt-e6801a95e2afd52e.safetensors',
    'defended/key-probe-prune-7f35c3f6b2641461.card.json',
    'defended/key-probe-prune-7f35c3f6b2641461.safetensors',
    'defended/key-probe-prune-da42d1bbf3dbea25.card.json',
    'defended/key-probe-prune-da42d1bbf3dbea25.safetensors',
    'models/key-probe-key-probe-data-687360ab62fd5e50.card.json',
    'models/key-probe-key-probe-data-687360ab62fd5e50.safetensors',
    'ranges/key-probe-ee0522d52a038dd4.json',
    'ranges/key-probe-f9273a4de3a8695d.json',
    'ranges/key-probe-ff3ea60f6a947070.json',
    'surrogates/key-probe-65824f476982d866.card.json',
    'surrogates/key-probe-65824f476982d866.safetensors',
    'uaps/uap-5a5dcba3731601cc.safetensors',
    'victims/key-probe-11e6f1b6c03199ae.card.json',
    'victims/key-probe-11e6f1b6c03199ae.safetensors',
    'victims/key-probe-d15407326641ecbd.card.json',
    'victims/key-probe-d15407326641ecbd.safetensors',
]


# Keys changed on purpose after the pins above were taken -- each entry is
# (pinned value, value now, why).  The pins stay as they were: a change that
# is not listed here still fails the test.
CHANGED_ON_PURPOSE = {
    # universal perturbations train on a fixed thread count (FIT_THREADS, in
    # the key): before, one key gave different UAPs under different
    # OMP_NUM_THREADS (tests/test_uap_threads.py)
    **{f'universal uap @{a} limit=6 seed=0': (CELL_KEYS[f'universal uap @{a} limit=6 seed=0'], new, "fit_threads")
       for a, new in (("0.2", "889f632d0af07fbe"), ("0.4", "3696f3b7a11baebb"), ("0.8", "b03d564bf2978c69"))},
    'uaps/uap-5a5dcba3731601cc.safetensors': ('uaps/uap-5a5dcba3731601cc.safetensors',
                                               'uaps/uap-6325092693ef9991.safetensors', "fit_threads"),
}


def _now(pinned):
    """The pinned keys with the changes made on purpose applied."""
    changed = {old: new for old, new, _ in CHANGED_ON_PURPOSE.values()}
    if isinstance(pinned, dict):
        return {k: changed.get(v, v) for k, v in pinned.items()}
    return sorted(changed.get(v, v) for v in pinned)


@pytest.fixture
def probe(plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    plugin(KeyProbePlugin(), "key-probe")
    return tmp_path


def test_cell_and_artifact_keys_are_those_before_the_reorganisation(probe):
    keys, artifacts = run_probe(probe / "store.sqlite")
    assert keys == _now(CELL_KEYS)
    assert artifacts == _now(ARTIFACTS)


def test_every_change_made_on_purpose_replaces_a_pinned_value():
    for name, (old, new, why) in CHANGED_ON_PURPOSE.items():
        assert (old in CELL_KEYS.values() or old in ARTIFACTS) and old != new and why, name
