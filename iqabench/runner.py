"""The runner: executes cells, writes the store, never recomputes.

Each cell is keyed by the hash of its resolved configuration (model with its
weights, dataset with its content fingerprint, split and image limit,
attack with all parameters, seed, batch size).  Batches are fixed by index
and every batch's randomness is seeded from (seed, batch index), so a run
resumed after a kill computes exactly the rows an uninterrupted run would.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import defended, imagemetrics, scores
from .artifacts import cache_dir, canonical_json, config_key, load_state, save_state, write_json
from .contracts import Attack, AttackResult, IQADataset, IQAModel, Item, UniversalAttack
from .errors import DatasetError, IQABenchError, ModelError, NonFiniteError, PluginError
from .gradients import counting_steps
from .manifest import build_manifest, new_run_id
from .models import build_model, ensure_score_range, model_identity
from .params import resolve_params
from .plugins import lookup, notify_result, registry
from .sampling import sampling_key, subset
from .progress import console, progress
from .store import Store
from .suite import CellSpec


EVASION_KINDS = ("adversarial", "universal")


def adversarial_attacks_for(model_name: str) -> list[str]:
    """Every registered adversarial or universal attack that suits ``model_name``."""
    model_cls = lookup("model", model_name).obj
    return [
        name for name, entry in sorted(registry("attack").items())
        if getattr(entry.obj, "kind", "adversarial") in EVASION_KINDS and entry.obj.suits(model_cls)
    ]


def resolve_device(device: str) -> str:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise IQABenchError(f"--device {device}: CUDA is not available on this machine")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise IQABenchError(f"--device {device!r}: expected cpu or cuda[:N]")
    return device


def batch_seed(seed: int, key: str, batch: int) -> int:
    """A seed for one batch that does not depend on what ran before it."""
    return zlib.crc32(f"{seed}:{key}:{batch}".encode()) & 0x7FFFFFFF


class BatchSource:
    """Re-iterable batches of a split, loaded lazily (a UAP makes several
    passes; holding a whole split on the device would waste memory)."""

    def __init__(self, dataset: IQADataset, items: list[Item], batch_size: int, device: str, load):
        self.items, self.batch_size, self.device, self.load = items, batch_size, device, load

    def __len__(self) -> int:
        return -(-len(self.items) // self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.items), self.batch_size):
            chunk = [self.load(it) for it in self.items[i: i + self.batch_size]]
            for shape in dict.fromkeys(tuple(c.shape) for c in chunk):  # equal sizes stack
                yield torch.stack([c for c in chunk if tuple(c.shape) == shape]).to(self.device)


def build_attack(name: str, params: dict[str, Any] | None = None) -> Attack:
    """The registered attack ``name`` with its parameters resolved (errors name both).

    ``attack.params`` -- part of every cell's key -- records the values the
    attack runs with, after its own ``__post_init__``: a profile that fills
    parameters left at None (BAIQA's) is then captured by the key, so
    changing a profile's numbers never reuses results made with the old ones.
    """
    entry = lookup("attack", name)
    resolved = resolve_params(entry.obj, params or {}, f"attack {name!r}")
    attack = entry.obj(**resolved)
    attack.params = {k: getattr(attack, k, v) for k, v in resolved.items()}
    return attack


def with_baselines(cells: list[CellSpec]) -> list[CellSpec]:
    """``cells`` plus the like-for-like baseline of every defended cell, each once.

    A defended row is only comparable with the same model made the same way
    without the defence (:func:`iqabench.defended.baseline_of`: NT with
    ``lam = 0`` and its own recipe and seed; the undefended start model for a
    post-training defence), so the baseline runs wherever its defence runs.
    A missing baseline is inserted just before the first cell that needs it.
    """
    seen = {_spec_identity(c) for c in cells}
    out: list[CellSpec] = []
    for spec in cells:
        twin = baseline_spec(spec)
        if twin is not None and _spec_identity(twin) not in seen:
            seen.add(_spec_identity(twin))
            out.append(twin)
        out.append(spec)
    return out


def _spec_identity(spec: CellSpec) -> str:
    """A cell spec with its defence parameters resolved (two spellings of one cell compare equal)."""
    params = {} if spec.defense == defended.NONE else defended.build_defense(spec.defense, spec.defense_params).params
    return canonical_json({**asdict(spec), "defense_params": params})


def baseline_spec(spec: CellSpec) -> CellSpec | None:
    """The like-for-like baseline cell of a defended ``spec``; None when undefended or
    when the cell is its own baseline (NT at ``lam = 0``)."""
    if spec.defense == defended.NONE:
        return None
    base = defended.baseline_of(spec.defense, spec.defense_params)
    twin = replace(spec, defense=base["name"], defense_params=base["params"])
    return None if _spec_identity(twin) == _spec_identity(spec) else twin


class Runner:
    def __init__(self, store: str | Path, device: str = "cpu", force: bool = False, show_progress: bool = True,
                 baselines: bool = True):
        self.store = Store(store)
        self.baselines = baselines  # add each defended cell's like-for-like baseline (see with_baselines)
        self.device = resolve_device(device)
        self.force = force
        self.show_progress = show_progress
        self._models: dict[str, IQAModel] = {}
        self._datasets: dict[str, IQADataset] = {}

    # ------------------------------------------------------------ building
    def dataset(self, spec: CellSpec) -> IQADataset:
        key = config_key([spec.dataset, spec.dataset_params])
        if key not in self._datasets:
            entry = lookup("dataset", spec.dataset)
            params = resolve_params(entry.obj, spec.dataset_params, f"dataset {spec.dataset!r}")
            self._datasets[key] = entry.obj(**params)
        ds = self._datasets[key]
        if spec.split not in ds.splits():
            raise DatasetError(f"dataset {spec.dataset!r} has no split {spec.split!r} (splits: {', '.join(ds.splits())})")
        return ds

    def model(self, spec: CellSpec) -> IQAModel:
        key = config_key([spec.model, spec.model_params, spec.weights, spec.seed, spec.defense, spec.defense_params])
        if key not in self._models:
            if spec.defense == defended.NONE:
                model = build_model(spec.model, spec.model_params, spec.weights, self.device, spec.seed)
            else:  # trained or transformed once, then cached (iqabench.defended)
                model = defended.defended_model(spec.model, spec.model_params, spec.weights, self.dataset(spec),
                                                spec.defense, spec.defense_params, spec.seed, self.device,
                                                self.show_progress)
                self.normalise_like_baseline(model, spec)
            model.requires_grad_(False)  # attacks need input gradients only
            self._models[key] = model
        return self._models[key]

    def normalise_like_baseline(self, model: IQAModel, spec: CellSpec) -> None:
        """Give a defended model its baseline's fixed clean range (recorded in its cell key).

        Normalised scores of a defended row and of its baseline row are then
        one linear map of the raw scores, so their differences are the
        defence's effect and not a change of units -- a defence that flattens
        the score (strong NT) would otherwise have a narrow range of its own
        that inflates every normalised gain.  The baseline's range is its card's
        or, for a model without one (NT at ``lam = 0``, its own baseline), the
        cached range of the stratified reference subset
        (:func:`~iqabench.models.ensure_score_range`).
        """
        twin = baseline_spec(spec)
        reference = model if twin is None else self.model(twin)
        model.score_range = ensure_score_range(reference, self.dataset(spec), self.device, spec.batch_size)
        model.defense = {**model.defense, "normalised_by": model_identity(reference)}

    @staticmethod
    def attack(spec: CellSpec) -> Attack:
        return build_attack(spec.attack, spec.attack_params)

    def validate(self, cells: list[CellSpec]) -> None:
        """Resolve every name and parameter before any work starts."""
        for spec in cells:
            lookup("model", spec.model)
            lookup("dataset", spec.dataset)
            self.attack(spec)
            resolve_params(lookup("model", spec.model).obj, spec.model_params, f"model {spec.model!r}")
            resolve_params(lookup("dataset", spec.dataset).obj, spec.dataset_params, f"dataset {spec.dataset!r}")
            if spec.defense != defended.NONE:
                defended.build_defense(spec.defense, spec.defense_params)

    # ------------------------------------------------------------- running
    def run(self, cells: list[CellSpec]) -> list[dict]:
        """Run every cell; returns one summary per evaluated cell (a universal
        attack yields one per amplitude)."""
        self.validate(cells)
        if self.baselines:
            cells = with_baselines(cells)
        run_id = new_run_id()
        manifest = build_manifest(run_id, self.device, sorted({c.seed for c in cells}))
        summaries: list[dict] = []
        try:
            with progress(self.show_progress) as bar:
                for spec in cells:
                    summaries.extend(self.run_cell(spec, run_id, manifest, bar))
        finally:
            manifest_dir = self.store.path.parent / "manifests"
            write_json(manifest_dir / f"{run_id}.json", manifest)
            self.store.add_run(run_id, manifest)
        return summaries

    def run_cell(self, spec: CellSpec, run_id: str, manifest: dict, bar) -> list[dict]:
        attack = self.attack(spec)
        if attack.kind == "backdoor":  # trains its own victim: see iqabench.backdoor
            from .backdoor import run_backdoor_cell

            return run_backdoor_cell(self, spec, attack, run_id, manifest, bar)
        dataset = self.dataset(spec)
        model = self.model(spec)
        split_items = list(dataset.items(spec.split))
        items = subset(split_items, spec.limit, spec.seed)
        if not items:
            raise DatasetError(f"dataset {spec.dataset!r}: split {spec.split!r} has no images")
        low, high = ensure_score_range(model, dataset, self.device, spec.batch_size)
        config = {
            "kind": attack.kind,
            "model": model_identity(model),
            "dataset": {"name": spec.dataset, "params": spec.dataset_params, "split": spec.split,
                        "limit": spec.limit, "fingerprint": dataset.fingerprint(),
                        **sampling_key(spec.limit, len(split_items))},
            "attack": {"name": spec.attack, "params": attack.params,
                       **({"provenance": attack.provenance()} if hasattr(attack, "provenance") else {})},
            "defense": getattr(model, "defense", None),  # None: undefended (keys of older cells unchanged)
            "seed": spec.seed,
            "batch_size": spec.batch_size,
        }
        label = f"{spec.model} x {spec.attack} on {spec.dataset}/{spec.split}"
        if attack.kind == "adversarial":
            perturb = lambda x: attack.perturb(model, x)  # noqa: E731
            return [self.evaluate_cell(config, items, perturb, model, dataset, (low, high), spec, run_id, manifest, bar, label)]
        if attack.kind == "universal":
            uap, artifact = self.fit_universal(attack, model, dataset, spec)
            out = []
            for amplitude in attack.amplitudes:
                cfg = {**config, "attack": {**config["attack"], "amplitude": amplitude, "artifact": artifact}}

                def perturb(x, amplitude=amplitude):
                    bound = torch.full((x.shape[0],), amplitude * float(uap.abs().max()))
                    return AttackResult(attack.apply(uap, x, amplitude), bound, "linf")

                out.append(self.evaluate_cell(cfg, items, perturb, model, dataset, (low, high), spec, run_id,
                                              manifest, bar, f"{label} @ {amplitude}"))
            return out
        raise IQABenchError(f"attack {spec.attack!r} is a {attack.kind} attack, which `iqabench run` cannot drive yet")

    def fit_universal(self, attack: UniversalAttack, model: IQAModel, dataset: IQADataset, spec: CellSpec):
        """Train the universal perturbation on the training split once, then
        reuse the cached artifact in every later run."""
        train_split = "train" if "train" in dataset.splits() else spec.split
        pool = list(dataset.items(train_split))
        cfg = {"model": model_identity(model), "dataset": dataset.fingerprint(), "split": train_split,
               "train_limit": spec.train_limit, **sampling_key(spec.train_limit, len(pool)), "attack": spec.attack,
               "params": attack.params, "seed": spec.seed, "batch_size": spec.batch_size}
        key = config_key(cfg)
        path = cache_dir("uaps") / f"{spec.attack}-{key}.safetensors"
        if path.exists():
            return load_state(path)["uap"].to(self.device), key
        source = BatchSource(dataset, subset(pool, spec.train_limit, spec.seed), spec.batch_size, self.device,
                             lambda item: self.load_checked(dataset, item, model))
        torch.manual_seed(spec.seed)
        uap = attack.fit(model, source, self.device).detach()
        if not torch.isfinite(uap).all():  # never cache (or apply) a NaN perturbation
            raise ModelError(f"attack {spec.attack!r}: training produced a non-finite perturbation (model "
                             f"{spec.model!r} gave a non-finite score or gradient on the {train_split!r} split)")
        save_state(path, {"uap": uap}, {"config": canonical_json(cfg)})
        return uap, key

    def evaluate_cell(self, config: dict, items: list[Item], perturb, model: IQAModel, dataset: IQADataset,
                      score_range: tuple[float, float], spec: CellSpec, run_id: str, manifest: dict, bar,
                      label: str) -> dict:
        """Attack the items batch by batch, resuming from the store."""
        key = config_key(config)
        low, high = score_range
        manifest["cells"].append({"key": key, "config": config, "score_range": [low, high]})
        if self.store.cell_status(key) == "done" and not self.force:
            console.print(f"[dim]skip {label} (finished earlier, cell {key}; --force recomputes)[/dim]")
            return self.store.cells_by_key(key)["summary"]
        if self.force:
            self.store.reset_cell(key)
        self.store.start_cell(key, config["kind"], config, run_id)
        batches = [items[i: i + spec.batch_size] for i in range(0, len(items), spec.batch_size)]
        done = self.store.done_batches(key)
        task = bar.add_task(label, total=len(items))
        for b, batch in enumerate(batches):
            if b not in done:
                torch.manual_seed(batch_seed(spec.seed, key, b))
                rows = self.attack_batch(model, perturb, dataset, batch, b * spec.batch_size, config["attack"]["name"])
                self.store.add_batch(key, b, rows)
            bar.advance(task, len(batch))
        rows = self.store.images(key)
        summary = self.summarise(rows, model, low, high, spec)
        amplitude = config["attack"].get("amplitude")
        summary["attack"] = config["attack"]["name"] + (f" @{amplitude:g}" if amplitude is not None else "")
        self.store.finish_cell(key, summary)
        summary = self.store.cells_by_key(key)["summary"]  # the stored form, as a rerun returns it
        notify_result({"key": key, "config": config, "summary": summary})
        return summary

    def attack_batch(self, model: IQAModel, perturb, dataset: IQADataset, batch: list[Item], offset: int,
                     attack_name: str) -> list[dict]:
        images = [self.load_checked(dataset, item, model) for item in batch]
        groups: dict[tuple, list[int]] = {}
        for i, img in enumerate(images):  # equal sizes share a forward pass
            groups.setdefault(tuple(img.shape), []).append(i)
        out: dict[int, dict] = {}
        for idxs in groups.values():
            x = torch.stack([images[i] for i in idxs]).to(self.device)
            names = [batch[i].name for i in idxs]
            with torch.no_grad():
                clean = model(x)
            self.check_scores(model, clean, names, "clean")
            try:
                with counting_steps():
                    result = perturb(x)
            except NonFiniteError as e:  # batch positions -> the images' names
                raise e.named(attack_name, names) from None
            adv = result.images.detach()
            self.check_result(attack_name, x, adv, result)
            with torch.no_grad():
                attacked = model(adv)
                psnr = imagemetrics.psnr(adv, x)
                ssim = imagemetrics.ssim(adv, x)
                linf = imagemetrics.linf(adv, x)
            self.check_scores(model, attacked, names, "attacked")
            bound = result.bound.reshape(-1).expand(len(idxs)) if result.bound.numel() == 1 else result.bound.reshape(-1)
            for j, i in enumerate(idxs):
                out[i] = {
                    "name": batch[i].name, "idx": offset + i,
                    "clean": float(clean[j]), "attacked": float(attacked[j]),
                    "psnr": float(psnr[j]), "ssim": float(ssim[j]), "linf": float(linf[j]),
                    "bound": float(bound[j]), "extra": {"norm": result.norm, "mos": batch[i].mos},
                }
        return [out[i] for i in range(len(batch))]

    @staticmethod
    def load_checked(dataset: IQADataset, item: Item, model: IQAModel) -> torch.Tensor:
        img = dataset.load(item)
        if img.ndim != 3 or img.shape[0] != 3:
            raise DatasetError(f"dataset {dataset.name!r}: image {item.name!r} loaded with shape {tuple(img.shape)}, expected 3xHxW")
        model.require_size(img, f"dataset {dataset.name!r}: image {item.name!r} ({item.source})")
        return img

    @staticmethod
    def check_scores(model: IQAModel, s: torch.Tensor, names: list[str], what: str) -> None:
        bad = ~torch.isfinite(s.reshape(-1))
        if bad.any():
            culprit = names[int(bad.nonzero()[0])]
            raise ModelError(f"model {model.name!r} returned a non-finite {what} score for image {culprit!r}")

    @staticmethod
    def check_result(attack: str, x: torch.Tensor, adv: torch.Tensor, result) -> None:
        """A broken attack plugin must not publish numbers."""
        if adv.shape != x.shape:
            raise PluginError(f"attack {attack!r} returned shape {tuple(adv.shape)} for input {tuple(x.shape)}")
        if not torch.isfinite(adv).all():
            raise PluginError(f"attack {attack!r} returned non-finite pixels")
        if adv.min() < 0 or adv.max() > 1:
            raise PluginError(f"attack {attack!r} returned pixels outside [0, 1]")
        delta = (adv - x).flatten(1).double()
        measured = {"linf": lambda: delta.abs().amax(1), "l2": lambda: delta.norm(dim=1),
                    "mse": lambda: delta.pow(2).mean(1)}
        if result.norm in measured:
            bound = result.bound.to(adv.device).reshape(-1).double()
            if (measured[result.norm]() > bound * (1 + 1e-5) + 1e-6).any():
                raise PluginError(f"attack {attack!r} exceeded its recorded {result.norm} bound")

    @staticmethod
    def summarise(rows: list[dict], model: IQAModel, low: float, high: float, spec: CellSpec) -> dict[str, Any]:
        clean = np.array([r["clean"] for r in rows])
        attacked = np.array([r["attacked"] for r in rows])
        summary = scores.summarise(clean, attacked, low, high, lower_better=model.lower_better)
        extras = [json.loads(r["extra"]) if isinstance(r.get("extra"), str) else (r.get("extra") or {}) for r in rows]
        mos = np.array([np.nan if e.get("mos") is None else e["mos"] for e in extras], dtype=np.float64)
        summary.update(scores.defence_figures(clean, attacked, mos))
        for col in ("psnr", "ssim", "linf", "bound"):
            vals = np.array([r[col] for r in rows], dtype=np.float64)
            finite = vals[np.isfinite(vals)]
            summary[col] = float(finite.mean()) if finite.size else float("nan")
        test = (getattr(model, "card", None) or {}).get("test")
        if test:  # the attacked model's own clean quality on the whole test split (its card)
            summary["model_test"] = {k: test[k] for k in ("split", "n", "plcc", "srocc", "rmse") if k in test}
        norms = {e.get("norm") for e in extras}
        summary["norm"] = norms.pop() if len(norms) == 1 else None  # the units of "bound"
        summary.update({
            "n": len(rows), "score_range": [low, high], "weights": model.weights,
            "lower_better": model.lower_better, "spec": asdict(spec),
        })
        return summary
