"""The backdoor experiment kind: the store cells of a backdoor attack.

Undefended (``--defense none``): two cells, the clean model ("w/o") and the
backdoored victim, each evaluated under the trigger.  Defended: one cell,
the victim as the defender leaves it (:func:`.defended.defended_victim`);
its configuration names the defence, so it never collides with the
undefended cells, whose keys stay as they were.  Both models are evaluated
with :func:`.evaluation.evaluate_backdoor` and stored per image and per
alpha: a row named ``<image>@<alpha>``, ``bound`` = alpha, ``clean`` = the
clean prediction, ``attacked`` = the triggered one.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from ...artifacts import file_digest
from ...contracts.context import gallery_dir
from ...contracts import BackdoorAttack, CellSpec, Experiment, IQADataset, IQAModel, Item, PlannedCell, RunContext
from ...data.sampling import sampling_key, subset
from ...errors import DatasetError
from ...metrics import images as imagemetrics
from ...metrics.backdoor import TEST_ALPHAS
from ...registry import NO_DEFENSE
from ..citations import BAIQA
from ..components import cell_dataset
from ..gallery import Gallery, gain
from .defended import defended_victim
from .evaluation import WHOLE_IMAGE, evaluate_backdoor, evaluation_crops, from_description
from .plan import BackdoorPlan, BackdoorSetup, plan_backdoor, prepare_backdoor


@dataclass
class _Work:
    """What evaluating one backdoor cell needs (``PlannedCell.work``)."""

    spec: CellSpec
    model: IQAModel
    path: Path
    dataset: IQADataset
    items: list[Item]
    setup: BackdoorPlan | BackdoorSetup
    result: dict | None = None
    eval_s: float = 0.0


class BackdoorExperiment(Experiment):
    name = "backdoor"
    citation = BAIQA
    description = ("Poison the training split, train the victim and the clean model, "
                   "evaluate both under the trigger (BAIQA)")

    def plan(self, spec: CellSpec, attack: BackdoorAttack, ctx: RunContext) -> list[PlannedCell]:
        dataset = cell_dataset(spec, ctx)
        labelled = [it for it in dataset.items(spec.split) if it.mos is not None]
        items = subset(labelled, spec.limit, spec.seed)
        sampled = sampling_key(spec.limit, len(labelled)) or sampling_key(_trigger_images(attack), len(items))
        if not items:
            raise DatasetError(f"dataset {spec.dataset!r}: split {spec.split!r} has no labelled images")
        where = f"on {spec.dataset}/{spec.split}"
        if spec.defense != NO_DEFENSE:
            plan = plan_backdoor(attack, spec, dataset, ctx)
            model, path, defense = defended_victim(plan, spec)
            cfg = {**victim_config(spec, attack, dataset, plan, path, sampled), "defense": defense}
            label = f"{spec.model} x {spec.attack} (backdoored +{spec.defense}) {where}"
            return [PlannedCell(cfg, label, dict(plan.context.backbone), _Work(spec, model, path, dataset, items, plan))]
        setup = prepare_backdoor(attack, spec, dataset, ctx)
        victim_cfg = victim_config(spec, attack, dataset, setup, setup.victim_path, sampled)
        clean_cfg = {**victim_cfg, "victim": "clean",
                     "attack": {"name": "w/o", "trigger": setup.trigger_identity["name"]},
                     "model": {**victim_cfg["model"], "weights": weights_id(setup.clean_path)}}
        return [PlannedCell(cfg, f"{spec.model} x {cfg['attack']['name']} ({cfg['victim']}) {where}",
                            dict(setup.context.backbone), _Work(spec, model, path, dataset, items, setup))
                for cfg, model, path in ((clean_cfg, setup.clean, setup.clean_path),
                                         (victim_cfg, setup.victim, setup.victim_path))]

    def evaluate(self, cell: PlannedCell, ctx: RunContext, done: set[int]) -> Iterator[tuple[int, list[dict]]]:
        """Every batch (one per alpha, alpha 0 first): the evaluation is one pass,
        so a resumed cell evaluates again and rewrites the rows it had."""
        w: _Work = cell.work
        t0 = time.perf_counter()
        w.result = evaluate_backdoor(w.model, w.dataset, w.items, w.setup.trigger, w.setup.delta_max, TEST_ALPHAS,
                                     ctx.device, w.spec.batch_size, ctx.bar, cell.label, cell.config["trigger_images"],
                                     from_description(cell.config.get("eval_crops")), cell.config["seed"])
        w.eval_s = time.perf_counter() - t0
        yield from enumerate(image_rows(w.result))

    def summarise(self, cell: PlannedCell, rows: list[dict], ctx: RunContext) -> dict[str, Any]:
        w: _Work = cell.work
        keep_gallery(cell, ctx)
        config, m = cell.config, w.result["metrics"]
        crops = from_description(config.get("eval_crops"))
        return {
            "kind": "backdoor", "victim": config["victim"], "attack": config["attack"]["name"],
            "label_mode": config["attack"].get("label_mode"), "trigger": config["trigger"]["name"],
            **{k: m["benign"][k] for k in ("plcc", "srocc", "rmse")},
            "mmae": m["mmae"], "mmra": m["mmra"], "psnr": m.get("psnr_alpha1"),
            "per_alpha": {f"{a:+.1f}": v for a, v in m["per_alpha"].items()},
            "delta_max": m["delta_max"], "n": m["n"], "n_triggered": m["n_triggered"], "artifact": weights_id(w.path),
            "eval_crops": crops.describe() if crops is not None else dict(WHOLE_IMAGE),
            "trigger_identity": config["trigger"], "defense": config["defense"],
            "timings": {**w.setup.timings, "eval_s": w.eval_s},
            **w.setup.context.backbone,  # what its models started from: imagenet (file, sha256) or random
            "spec": asdict(w.spec),
        }


def keep_gallery(cell: PlannedCell, ctx: RunContext) -> None:
    """Thumbnails beside the store (:class:`~iqabench.experiments.gallery.Gallery`) of the
    ``ctx.gallery`` triggered images whose score the trigger at the largest alpha (+1) raised
    most -- clean, triggered, amplified difference -- with both scores, the PSNR and the SSIM
    of the triggered image; nothing off a store or with ``ctx.gallery = 0``.  Changes no row,
    no summary and no key."""
    result = getattr(cell.work, "result", None)
    if ctx.store is None or not ctx.gallery or result is None:
        return
    w: _Work = cell.work
    alpha, subset = max(result["y"]), result["subset"]
    rows = [{"name": result["images"][i], "idx": int(i), "clean": float(result["y0"][i]),
             "attacked": float(result["y"][alpha][k]), "psnr": float(result["psnr"][alpha][k])}
            for k, i in enumerate(subset)]
    gallery = Gallery(gallery_dir(ctx.store.path, cell.key), ctx.gallery, lower_better=False)  # the shift itself
    gallery.reset()
    kept = sorted(rows, key=lambda r: -gain(r, False))[: ctx.gallery]
    items = {it.name: it for it in w.items}
    for row in kept:
        x = w.dataset.load(items[row["name"]]).unsqueeze(0).to(ctx.device)
        xa = w.setup.trigger.apply(x, alpha)
        row["ssim"] = float(imagemetrics.ssim(xa, x)[0])
        gallery.offer([row], x, xa)
    gallery.finish(kept)


def _trigger_images(attack: BackdoorAttack) -> int:
    return int(getattr(attack, "eval_images", 0) or 0)


def weights_id(path: Path) -> str:
    """How a cell records the weights it evaluated: the file's name and digest."""
    return f"{path.name} (sha256:{file_digest(path)})"


def victim_config(spec: CellSpec, attack: BackdoorAttack, dataset: IQADataset, setup: BackdoorPlan | BackdoorSetup,
                  weights: Path, sampled: dict | None = None) -> dict:
    """The undefended victim cell's configuration (its key must not change:
    stored results rely on it); the clean and defended cells derive from it.
    Evaluation crops (``profile=paper``) add an ``eval_crops`` entry; whole-image
    evaluation adds nothing.
    ``sampled``: :func:`iqabench.data.sampling.sampling_key` of the evaluated
    subsets (empty when every image is evaluated and triggered)."""
    ctx = setup.context
    crops = evaluation_crops(attack, ctx.recipe.crop, spec.seed)
    return {
        "kind": "backdoor",
        "dataset": {"name": spec.dataset, "params": spec.dataset_params, "split": spec.split,
                    "limit": spec.limit, "fingerprint": dataset.fingerprint(), **(sampled or {})},
        "defense": None, "seed": spec.seed, "batch_size": spec.batch_size,
        "trigger": setup.trigger_identity, "delta_max": setup.delta_max, "alphas": list(TEST_ALPHAS),
        "trigger_images": _trigger_images(attack),
        "victim": "backdoored",
        "attack": {"name": spec.attack, "params": attack.key_params(), "label_mode": attack.label_mode,
                   "trigger": setup.trigger_identity["name"]},
        "model": {"name": spec.model, "params": ctx.resolved_params, "recipe_profile": ctx.recipe_profile,
                  "recipe": asdict(ctx.recipe), "weights": weights_id(weights)},
        **({"eval_crops": crops.describe()} if crops is not None else {}),
    }


def image_rows(result: dict) -> list[list[dict]]:
    """Store rows, one batch per alpha: first alpha 0 (the clean prediction
    of every image, for the benign metrics), then one per test alpha (the
    triggered images).  A row is named ``<image>@<alpha>``; ``bound`` holds
    alpha, ``clean`` the clean prediction, ``attacked`` the triggered one."""
    names, mos, y0 = result["images"], result["mos"], result["y0"]

    def row(i: int, idx: int, alpha: float, attacked: float, psnr: float | None) -> dict:
        return {"name": f"{names[i]}@{alpha:+.1f}", "idx": idx, "clean": float(y0[i]), "attacked": attacked,
                "psnr": psnr, "ssim": None, "linf": None, "bound": float(alpha),
                "extra": {"image": names[i], "alpha": float(alpha), "mos": float(mos[i])}}

    batches = [[row(i, i, 0.0, float(y0[i]), None) for i in range(len(names))]]
    offset = len(names)
    for alpha, ya in result["y"].items():
        batches.append([row(i, offset + k, alpha, float(ya[k]), float(result["psnr"][alpha][k]))
                        for k, i in enumerate(result["subset"])])
        offset += len(result["subset"])
    return batches
