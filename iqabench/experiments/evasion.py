"""What adversarial and universal attacks share: a cell attacks every image of
a (sampled) split once and stores, per image, the clean and attacked scores,
PSNR, SSIM, L-inf and the bound the attack used.

A cell with a delivery (``CellSpec.quantise``, ``jpeg_quality``;
:mod:`iqabench.data.delivery`) scores the clean and the attacked image as
they come back from their 8-bit (or JPEG) files -- both, so that the gain is
the attack's and not the codec's -- and ``ctx.save_images`` receives the
attacked files.

Batches are fixed by index and each batch's randomness is seeded from (seed,
cell key, batch index), so a run resumed after a kill computes exactly the
rows an uninterrupted run would.  The cell's summary holds the five scores
(normalised with the model's FIXED clean range) and the defence figures;
behind an input defence (:mod:`iqabench.models.purified`) the rows also hold
the bare model's scores and the purified images' similarity, and the summary
the defences benchmark's scores (:mod:`iqabench.metrics.defences`) and, for a
certified defence, its interval widths.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..contracts import (Attack, AttackResult, CellSpec, Experiment, IQADataset, IQAModel, Item, PlannedCell,
                         RunContext)
from ..contracts.context import gallery_dir
from ..data.delivery import SUFFIX, deliver
from ..data.sampling import sampling_key, subset
from ..errors import DatasetError, NonFiniteError
from ..gradients import counting_steps
from ..metrics import images as imagemetrics
from ..metrics import defences, scores
from ..models.build import model_identity, parse_trained
from ..models.purified import purification_extras, same_draws
from ..models.score_range import ensure_score_range
from ..registry import NO_DEFENSE
from .checks import check_result, check_scores, load_checked
from .citations import MSU
from .components import cell_dataset, cell_model
from .gallery import Gallery


@dataclass
class EvasionWork:
    """What attacking one cell needs (``PlannedCell.work``); ``perturb(x)``
    attacks a batch."""

    spec: CellSpec
    model: IQAModel
    dataset: IQADataset
    items: list[Item]
    score_range: tuple[float, float]
    perturb: Callable[[torch.Tensor], AttackResult] | None = None
    source: IQAModel | None = None  # the model the attack is crafted on (``model`` unless a transfer)


def source_spec(spec: CellSpec) -> CellSpec | None:
    """The undefended white-box cell of the model a transfer cell crafts its
    attack on, or None for a white-box cell -- also when the source is the
    cell's own model (the transfer matrix's diagonal is the white-box cell,
    with its key)."""
    if not spec.transfer_from:
        return None
    src = spec.transfer_from
    twin = replace(spec, model=src["model"], model_params=dict(src.get("model_params") or {}),
                   weights=str(src.get("weights", "default")), defense=NO_DEFENSE, defense_params={}, transfer_from=None)
    if spec.defense == NO_DEFENSE and (twin.model, twin.model_params, twin.weights) == (
            spec.model, spec.model_params, spec.weights):
        return None
    return twin


def transfer_source(spec: CellSpec, ctx: RunContext) -> IQAModel | None:
    """The model a transfer cell crafts its attack on (built on the cell's
    dataset: ``trained:`` weights are trained on it), or None (:func:`source_spec`)."""
    twin = source_spec(spec)
    return None if twin is None else cell_model(twin, ctx)


def batch_seed(seed: int, key: str, batch: int) -> int:
    """A seed for one batch that does not depend on what ran before it."""
    return zlib.crc32(f"{seed}:{key}:{batch}".encode()) & 0x7FFFFFFF


class EvasionExperiment(Experiment):
    """Plans the cell every evasion attack shares; :meth:`cells` turns it into
    the attack's own cells (one, or one per amplitude).  Its scores are the
    MSU benchmark's methodology (``citation``)."""

    in_wildcard = True
    citation = MSU
    transfers = True

    def shares(self, spec: CellSpec) -> list[Any]:
        """The default's, a transfer cell's source model as its own white-box
        cell builds it (with its clean range) -- the plan builds or loads it too,
        and two plans building it at once would leave one idling on its lock --
        and each model trained for a ``trained:seed=N`` form (one artifact
        whatever the cell's seed or defence; :func:`iqabench.models.trained.resolve_weights`)."""
        out = super().shares(spec)
        twin = source_spec(spec)
        if twin is not None:
            out += [x for x in super().shares(twin) if x[0] == "model"]
        for s in (spec, twin) if twin is not None else (spec,):
            if (form := parse_trained(s.weights)) is not None:
                out.append(["trained", s.model, s.model_params, form.seed, form.profile, s.dataset, s.dataset_params])
        return out

    def plan(self, spec: CellSpec, attack: Attack, ctx: RunContext) -> list[PlannedCell]:
        dataset = cell_dataset(spec, ctx)
        model = cell_model(spec, ctx)
        source = transfer_source(spec, ctx)
        split_items = list(dataset.items(spec.split))
        items = subset(split_items, spec.limit, spec.seed)
        if not items:
            raise DatasetError(f"dataset {spec.dataset!r}: split {spec.split!r} has no images")
        low, high = ensure_score_range(model, dataset, ctx.device, spec.batch_size)
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
            **({"delivery": delivery} if (delivery := delivery_config(spec)) else {}),  # absent: keys unchanged
        }
        label = f"{spec.model} x {spec.attack} on {spec.dataset}/{spec.split}"
        work = EvasionWork(spec, model, dataset, items, (low, high), source=source or model)
        card = getattr(model, "card", None) or {}
        facts = {k: v for k, v in card.items() if k == "backbone"}
        if card.get("dataset"):  # what the weights were trained on: the manifest's, for the entry cards
            facts["training_data"] = f'{card["dataset"]} ({card.get("dataset_fingerprint", "?")})'
        if source is not None:  # a transfer cell: crafted on the source, scored on the model
            ensure_score_range(source, dataset, ctx.device, spec.batch_size)
            config["transfer_from"] = model_identity(source)
            label = f"{spec.transfer_from['model']} -> {label}"
        return self.cells(PlannedCell(config, label, {"score_range": [low, high], **facts}, work), attack, ctx)

    def cells(self, base: PlannedCell, attack: Attack, ctx: RunContext) -> list[PlannedCell]:
        """The attack's cells made from ``base`` (each with its ``work.perturb``)."""
        raise NotImplementedError

    def evaluate(self, cell: PlannedCell, ctx: RunContext, done: set[int]) -> Iterator[tuple[int, list[dict]]]:
        """Attack the items batch by batch, skipping the batches stored before."""
        w: EvasionWork = cell.work
        size = w.spec.batch_size
        batches = [w.items[i: i + size] for i in range(0, len(w.items), size)]
        task = ctx.bar.add_task(cell.label, total=len(w.items)) if ctx.bar is not None else None
        gallery = cell_gallery(cell, ctx)
        if gallery is not None and not done:
            gallery.reset()  # computed from its first batch: no thumbnail of an earlier computation stays
        save = None if ctx.save_images is None else ctx.save_images / image_folder(cell)
        for b, batch in enumerate(batches):
            if b not in done:
                torch.manual_seed(batch_seed(w.spec.seed, cell.key, b))
                yield b, attack_batch(w, batch, b * size, cell.config["attack"]["name"], ctx.device, gallery,
                                      cell.config.get("delivery"), save)
            if task is not None:
                ctx.bar.advance(task, len(batch))

    def summarise(self, cell: PlannedCell, rows: list[dict], ctx: RunContext) -> dict[str, Any]:
        w: EvasionWork = cell.work
        summary = summarise_rows(rows, w.model, *w.score_range, w.spec)
        gallery = cell_gallery(cell, ctx)
        if gallery is not None:
            gallery.finish(rows)
        amplitude = cell.config["attack"].get("amplitude")
        summary["attack"] = cell.config["attack"]["name"] + (f" @{amplitude:g}" if amplitude is not None else "")
        return summary


def cell_gallery(cell: PlannedCell, ctx: RunContext) -> Gallery | None:
    """The cell's gallery beside the store (None off a store or with ``ctx.gallery = 0``)."""
    if ctx.store is None or not ctx.gallery:
        return None
    return Gallery(gallery_dir(ctx.store.path, cell.key), ctx.gallery, cell.work.model.lower_better)


def delivery_config(spec: CellSpec) -> dict | None:
    """How the attacked image reaches its scorer (part of the key), or None: the float tensor."""
    if spec.jpeg_quality:
        return {"format": "jpeg", "quality": spec.jpeg_quality}
    return {"format": "png"} if spec.quantise else None


def file_part(text: str) -> str:
    """``text`` as part of a saved image's path: runs of other characters than ``A-Za-z0-9._-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def image_folder(cell: PlannedCell) -> str:
    """The folder of a cell's saved images: readable names, then the cell's key."""
    attack = cell.config["attack"]
    name = f"{cell.config['model']['name']}_{attack['name']}" + (
        f"_a{attack['amplitude']:g}" if attack.get("amplitude") is not None else "")
    return f"{file_part(name)}_{cell.key}"


def attack_batch(work: EvasionWork, batch: list[Item], offset: int, attack_name: str, device: str,
                 gallery: Gallery | None = None, delivery: dict | None = None, save=None) -> list[dict]:
    """The rows of one batch: images of equal size share a forward pass (thumbnails of
    the largest gains go to ``gallery``).  ``delivery``: score the images as they come
    back from their files (:func:`delivery_config`); ``save``: the folder the attacked
    files go to."""
    model = work.model
    images = [load_checked(work.dataset, item, model) for item in batch]
    groups: dict[tuple, list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(i)
    out: dict[int, dict] = {}
    for idxs in groups.values():
        x = torch.stack([images[i] for i in idxs]).to(device)
        names = [batch[i].name for i in idxs]
        draws = torch.random.get_rng_state()  # a random purifier draws alike for clean and attacked images
        with torch.no_grad():
            clean = model(x)
        check_scores(model, clean, names, "clean")
        try:
            with counting_steps():
                result = work.perturb(x)
        except NonFiniteError as e:  # batch positions -> the images' names
            raise e.named(attack_name, names) from None
        adv = result.images.detach()
        check_result(attack_name, x, adv, result)
        extras: list[dict] = [{} for _ in idxs]
        if delivery is not None:
            quality = delivery.get("quality", 0)
            x, _ = deliver(x, quality)
            adv, files = deliver(adv, quality)
            with torch.no_grad(), same_draws(draws):
                raw, clean = clean, model(x)
            check_scores(model, clean, names, "clean (delivered)")
            for j, e in enumerate(extras):
                e["clean_raw"] = float(raw[j])
                if save is not None:
                    path = save / (file_part(names[j]) + SUFFIX[delivery["format"]])
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(files[j])
                    e["file"] = str(path.relative_to(save.parent))
        with torch.no_grad(), same_draws(draws):
            attacked = model(adv)
        with torch.no_grad():
            psnr = imagemetrics.psnr(adv, x)
            ssim = imagemetrics.ssim(adv, x)
            linf = imagemetrics.linf(adv, x)
        check_scores(model, attacked, names, "attacked")
        purification = purification_extras(model, x, adv, draws)  # None unless an input defence
        bound = result.bound.reshape(-1).expand(len(idxs)) if result.bound.numel() == 1 else result.bound.reshape(-1)
        for j, i in enumerate(idxs):
            out[i] = {
                "name": batch[i].name, "idx": offset + i,
                "clean": float(clean[j]), "attacked": float(attacked[j]),
                "psnr": float(psnr[j]), "ssim": float(ssim[j]), "linf": float(linf[j]),
                "bound": float(bound[j]),
                "extra": {"norm": result.norm, "mos": batch[i].mos, **extras[j],
                          **(purification[j] if purification else {}), **(result.extra or [{}] * len(idxs))[j]},
            }
        if gallery is not None:
            gallery.offer([out[i] for i in idxs], x, adv)
    return [out[i] for i in range(len(batch))]


def query_curve(extras: list[dict], clean: np.ndarray, model: IQAModel, low: float, high: float) -> list[list[float]]:
    """``[q, mean absolute gain]`` at each checkpoint every image reached: the
    best score after q queries minus the clean one, towards "better", over
    the clean range (``abs_gain``'s units)."""
    curves = [dict((int(q), s) for q, s in e["query_curve"]) for e in extras]
    common = sorted(set.intersection(*(set(c) for c in curves)))
    span = (high - low) or 1.0
    return [[q, float(np.mean([model.direction * (c[q] - c0) / span for c, c0 in zip(curves, clean)]))]
            for q in common]


def summarise_rows(rows: list[dict], model: IQAModel, low: float, high: float, spec: CellSpec) -> dict[str, Any]:
    """The cell's summary from all its stored rows."""
    clean = np.array([r["clean"] for r in rows])
    attacked = np.array([r["attacked"] for r in rows])
    summary = scores.summarise(clean, attacked, low, high, lower_better=model.lower_better)
    extras = [json.loads(r["extra"]) if isinstance(r.get("extra"), str) else (r.get("extra") or {}) for r in rows]
    mos = np.array([np.nan if e.get("mos") is None else e["mos"] for e in extras], dtype=np.float64)
    summary.update(scores.defence_figures(clean, attacked, mos))
    if extras and all("bare_clean" in e for e in extras):  # an input defence: the defences benchmark's scores
        summary.update(defences.defence_scores(
            *([e[k] for e in extras] for k in ("bare_clean", "bare_attacked")), clean, attacked, mos, high - low,
            *([e[k] for e in extras] for k in ("ssim_purified_clean", "psnr_purified_clean",
                                               "ssim_purified_attacked", "psnr_purified_attacked"))))
    if extras and all("certified" in e for e in extras):  # a certified defence: its intervals
        summary.update(defences.certified_summary([e["certified"] for e in extras], attacked,
                                                  [e["l2"] for e in extras], high - low))
    for col in ("psnr", "ssim", "linf", "bound"):
        vals = np.array([r[col] for r in rows], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        summary[col] = float(finite.mean()) if finite.size else float("nan")
    card = getattr(model, "card", None) or {}
    if card.get("backbone"):  # a trained model: what its training started from
        summary["backbone"] = card["backbone"]
    test = card.get("test")
    if test:  # the attacked model's own clean quality on the whole test split (its card)
        summary["model_test"] = {k: test[k] for k in ("split", "n", "plcc", "srocc", "rmse") if k in test}
    if all("query_curve" in e for e in extras):  # a black-box attack: the mean gain after q queries
        summary["queries"] = float(np.mean([e["queries"] for e in extras]))
        summary["query_curve"] = query_curve(extras, clean, model, low, high)
    norms = {e.get("norm") for e in extras}
    summary["norm"] = norms.pop() if len(norms) == 1 else None  # the units of "bound"
    summary.update({
        "n": len(rows), "score_range": [low, high], "weights": model.weights,
        "lower_better": model.lower_better, "spec": asdict(spec),
    })
    return summary
