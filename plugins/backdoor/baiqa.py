"""BAIQA backdoor attacks (Yu et al., AAAI 2025): poison label and clean label.

``baiqa-p`` (P-BAIQA): a ``ratio`` subset of the training images gets the
trigger at a sampled strength ``alpha`` and the label ``y + Delta_max *
alpha``.  ``baiqa-c`` (C-BAIQA): labels untouched, ``alpha`` read off the
label (Remark 1), and each poisoned image first made a targeted adversarial
example towards the mean score on the surrogate (PGD with expectation over
random crops and flips), so that its clean content stops explaining its
label and the model must learn the trigger instead.

Triggers (``trigger=``): ``uap-dct`` -- BAIQA's, optimised on the surrogate by
Algorithm 1 (:mod:`.trigger_search`, cached with its PSNR) unless
``pattern=`` gives a fixed pattern such as the released one -- or any
registered trigger (``ftrojan``, ``blended``, ``wanet``: the paper's
baselines, poisoned the same way), e.g. ``--attack baiqa-p --param
trigger=blended``.

``profile`` sizes the expensive parts (the surrogate's and victim's recipe,
the trigger search, the PGD) -- ``quick`` and ``default`` for a CPU,
``paper`` for the paper's settings on a GPU; any of them can be overridden
by its own parameter (``search_epochs=...``).  Defaults: REFERENCES.md 2.

C-BAIQA against the release (``PGD_demo.py``, ``folders.py``,
``HyperIQASolver_multi_cl_v3.py``), step by step: the same PGD target (50 =
the middle of a 0-100 MOS range; ``mean_score``), loss (squared error to it
summed over 25 random crops, each flipped with probability 1/2, redrawn
every iteration), sign step 0.00627, 20 iterations, L-inf eps 2/255 (the
release's script passes 0.00784), no random start, projection then clamp to
[0, 1], on the whole training image with the surrogate in eval mode; the
trigger added afterwards to the whole adversarial image (the injection
rounds it to 8 bits and clamps), then the training crops; ``alpha = (y -
mean) / Delta_max`` = the release's ``0.25 * (y - 50) / 10``, not clipped,
labels untouched.  Differences: the release's surrogate is HyperIQA
(ResNet-50) trained on the poison subset with 5 crops per image, and its
DBCNN and TReS runs reuse that surrogate's PGD perturbations and trigger;
here the surrogate is the victim's own architecture trained with the
victim's recipe (25 crops per image at ``paper``).  The release adds the
stored perturbation and the trigger in its data pipeline at every epoch;
here once, before training (the same images: both steps are deterministic).
The CPU profiles take fewer PGD steps and crops, of the recipe's crop size.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import torch

from iqabench.artifacts import cache_dir, config_key, file_digest, load_state, save_state, write_json
from iqabench.contracts import BackdoorAttack, Item, Poison, Trigger, check_positive
from iqabench.errors import ParameterError
from iqabench.experiments.backdoor import BackdoorContext
from iqabench.params import resolve_params
from iqabench.progress import console
from iqabench.registry import lookup

from ..adversarial.pgd import PGD
from .alphas import Sampling, alpha_from_label, sample_alphas, shifted_labels
from .trigger_search import TriggerSearch, trigger_psnr
from .uap_dct import UAPDCT
from .. import bib

Profile = Literal["quick", "default", "paper"]

#: the settings each profile fills in for parameters left at None.  ``paper``
#: is REFERENCES.md 2 (about 18,000 Adam steps of 128 crops of 224 px on LIVEC).
#: ``default`` keeps the algorithm but takes a few hundred search steps on
#: small crops and 5 PGD steps, so that the default model's whole experiment
#: takes under 10 minutes on a 2-core CPU -- with a larger Adam step, so that
#: the pattern still grows from its U(-300, 300) start (PSNR ~35 dB) to the
#: PSNR bound within those steps.  ``quick`` is a smoke run sized for the
#: large zoo models on a CPU (a ResNet-50 forward+backward costs ~0.2 s per
#: image there): one crop per poisoned image, 2 Adam steps per search batch,
#: 2 PGD steps (still enough to reach the eps bound), 16 triggered test images.
#: ``pgd_crop`` stays None outside ``paper``: the EOT crops are then the ones
#: the victim trains on (the recipe's crop, as the paper's 224), since a
#: perturbation that moves the score of small crops barely moves that of a
#: model that sees whole-crop statistics (measured on the default model, 48
#: poisoned images, 2/255: 10 PGD steps on 64 px crops took the surrogate's
#: mean distance to the target score from 26.9 to 23.7, 5 steps on its 192 px
#: training crops to 15.7).
PROFILES: dict[str, dict[str, float | None]] = {
    "quick": {"search_epochs": 1, "search_crops": 1, "search_crop": 64, "search_batch": 32, "search_lr": 10.0,
              "search_steps": 2, "pgd_iters": 2, "pgd_crops": 1, "pgd_crop": None, "eval_images": 16,
              "eval_crops": 0},
    "default": {"search_epochs": 1, "search_crops": 2, "search_crop": 64, "search_batch": 32, "search_lr": 4.0,
                "search_steps": 10, "pgd_iters": 5, "pgd_crops": 1, "pgd_crop": None, "eval_images": 64,
                "eval_crops": 0},
    "paper": {"search_epochs": 50, "search_crops": 25, "search_crop": 224, "search_batch": 128, "search_lr": 1.0,
              "search_steps": 10, "pgd_iters": 20, "pgd_crops": 25, "pgd_crop": 224, "eval_images": 0,
              "eval_crops": 25},
}

#: ``eval_images``: test images evaluated under the trigger (20 forward passes
#: each; 0 = all, as the paper); the benign metrics always use every image.
#: ``eval_crops``: 0 -- one forward pass of the whole image per prediction
#: (the CPU profiles: 25 crops would cost 25 times as much); N -- the mean
#: over N random crops of side ``eval_crop`` with random flips, redrawn for
#: every alpha, as the release's test loop (:class:`iqabench.experiments.backdoor.evaluation.EvalCrops`).
#: poisoned images triggered (and attacked) per forward pass
POISON_BATCH = 32


def _batches(images: list[torch.Tensor], size: int):
    """Index lists of equal-size images, at most ``size`` each (so they stack)."""
    groups: dict[tuple, list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(i)
    for idx in groups.values():
        for s in range(0, len(idx), size):
            yield idx[s: s + size]


@dataclass
class BAIQABase(BackdoorAttack):
    """Shared parameters of both BAIQA attacks (defaults: REFERENCES.md 2)."""

    citation: ClassVar[str] = bib.BAIQA
    trigger: str = "uap-dct"
    pattern: str = ""
    ratio: float = 0.2
    #: keep each finished poisoning batch on disk until the victim is trained
    #: (a killed run resumes after it): only worth it where a batch is costly
    checkpointed: ClassVar[bool] = False
    delta_max: float = 40.0
    profile: Profile = "default"
    # Algorithm 1 (trigger search); None: from the profile
    eps: float = 8 / 255
    penalty: float = 1e8
    search_lr: float | None = None
    search_steps: int | None = None
    search_epochs: int | None = None
    search_crops: int | None = None
    search_crop: int | None = None
    search_batch: int | None = None
    search_init: float = 300.0
    search_seed: int = 919
    eval_images: int | None = None
    eval_crops: int | None = None
    eval_crop: int | None = None  # None: the recipe's training crop (the release's patch_size)

    eval_params: ClassVar[tuple[str, ...]] = ("eval_images", "eval_crops", "eval_crop")
    key_neutral: ClassVar[dict] = {"eval_crops": 0, "eval_crop": None}

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ParameterError(f"{self.name!r} parameter 'profile' must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        for key, value in PROFILES[self.profile].items():
            if hasattr(self, key) and getattr(self, key) is None:
                setattr(self, key, value)
        check_positive(self, "ratio", "delta_max", "eps", "search_lr", "search_steps", "search_epochs",
                       "search_crops", "search_crop", "search_batch")
        for key in ("eval_images", "eval_crops"):
            if getattr(self, key) < 0:
                raise ParameterError(f"{self.name!r} parameter {key!r} must be >= 0, got {getattr(self, key)!r}")
        if self.eval_crop is not None:
            check_positive(self, "eval_crop")
        if self.ratio > 1:
            raise ParameterError(f"{self.name!r} parameter 'ratio' must be <= 1, got {self.ratio!r}")
        lookup("trigger", self.trigger)  # an unknown trigger name fails here, naming it
        if self.pattern and self.trigger != "uap-dct":
            raise ParameterError(f"{self.name!r} parameter 'pattern' only applies to trigger 'uap-dct', not {self.trigger!r}")
        self._trigger_id: dict | None = None

    # ------------------------------------------------------------ trigger
    def search(self) -> TriggerSearch:
        return TriggerSearch(eps=self.eps, penalty=self.penalty, lr=self.search_lr, steps=self.search_steps,
                             epochs=self.search_epochs, batch=self.search_batch, crops=self.search_crops,
                             crop=self.search_crop, init=self.search_init, seed=self.search_seed)

    def make_trigger(self, ctx: BackdoorContext) -> Trigger:
        if self.trigger != "uap-dct":
            entry = lookup("trigger", self.trigger)
            params = resolve_params(entry.obj, {}, f"trigger {self.trigger!r}")
            self._trigger_id = {"name": self.trigger, "params": params}
            return entry.obj(**params)
        if self.pattern:
            trig = UAPDCT(pattern=self.pattern)
            self._trigger_id = {"name": "uap-dct", "pattern": file_digest(trig.pattern)}
            return trig
        t, info = self.optimised_pattern(ctx)
        self._trigger_id = {"name": "uap-dct", "artifact": info["key"], "psnr": info["psnr"],
                            "psnr_bound": info["psnr_bound"]}
        return UAPDCT().set_pattern(t)

    def optimised_pattern(self, ctx: BackdoorContext) -> tuple[torch.Tensor, dict]:
        """Algorithm 1 on the surrogate, run once per configuration (cached)."""
        search = self.search()
        cfg = {"experiment": ctx.identity(), "subset": ctx.poison_subset_identity(), "search": asdict(search)}
        key = config_key(cfg)
        path = cache_dir("triggers") / f"uap-dct-{key}.safetensors"
        info_path = path.with_suffix(".json")
        if path.exists() and info_path.exists():
            import json

            return load_state(path)["t"], json.loads(info_path.read_text())
        surrogate = ctx.surrogate()
        images = ctx.load(ctx.poison_items)
        t = search.fit(surrogate, images, ctx.device, ctx.bar)
        info = {"key": key, "psnr": trigger_psnr(t, images), "psnr_bound": search.psnr_bound, "config": cfg}
        save_state(path, {"t": t}, {"key": key, "psnr": info["psnr"]})
        write_json(info_path, info)
        return t, info

    def trigger_identity(self, ctx: BackdoorContext) -> dict:
        if self._trigger_id is None:
            self.make_trigger(ctx)
        return dict(self._trigger_id)

    # ------------------------------------------------------------ poisoning
    def poison(self, ctx: BackdoorContext, trigger: Trigger, items: list[Item]) -> Poison:
        """Trigger (and, C-BAIQA, attack) the poison subset batch by batch;
        each finished batch is checkpointed (when :attr:`checkpointed`, under the
        plan's poison identity), so a killed run resumes after it."""
        mos = torch.tensor([it.mos for it in items], dtype=torch.float64)
        alphas, labels = self.strengths(ctx, mos)
        images = ctx.load(items)
        out: list[torch.Tensor | None] = [None] * len(items)
        batches = list(_batches(images, POISON_BATCH))
        checkpoints = ctx.batch_checkpoints({"batch": POISON_BATCH, "items": config_key([it.name for it in items])}) \
            if self.checkpointed else None
        resumed = checkpoints.finished() if checkpoints is not None else 0
        kept = sum(len(idx) for idx in batches[:resumed])
        if resumed:
            console.print(f"[dim]poison ({self.name}): resuming after {kept} of {len(items)} images, "
                          f"kept in {checkpoints.dir}[/dim]")
        task = ctx.bar.add_task(f"poison ({self.name})", total=len(items), completed=kept) \
            if ctx.bar is not None else None
        torch.manual_seed(ctx.seed)
        self.start_poisoning(ctx)
        for k, idx in enumerate(batches):
            if k < resumed:
                poisoned = checkpoints.load(k, restore_rng=k == resumed - 1)["images"]
            else:
                x = torch.stack([images[i] for i in idx]).to(ctx.device)
                poisoned = self.poison_batch(ctx, trigger, x, alphas[idx].to(ctx.device, torch.float32)).detach()
                if checkpoints is not None:
                    checkpoints.save(k, {"images": poisoned})
                if task is not None:
                    ctx.bar.advance(task, len(idx))
            for j, i in enumerate(idx):
                out[i] = poisoned[j].cpu()
        names = [it.name for it in items]
        return Poison(images=dict(zip(names, out)), labels=dict(zip(names, labels.tolist())),
                      alphas=dict(zip(names, alphas.tolist())), info={"attack": self.name, "n": len(items)})

    def strengths(self, ctx: BackdoorContext, mos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image ``alpha`` and training label of the poisoned images."""
        raise NotImplementedError

    def start_poisoning(self, ctx: BackdoorContext) -> None:
        """Get what every batch needs, once the poisoning's random stream is seeded."""

    def poison_batch(self, ctx: BackdoorContext, trigger: Trigger, x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        return trigger.apply(x, alphas)


@dataclass
class BAIQAPoisonLabel(BAIQABase):
    """P-BAIQA: trigger at a sampled strength, label shifted by Delta_max * alpha."""

    name: ClassVar[str] = "baiqa-p"
    description: ClassVar[str] = ("BAIQA poison-label backdoor: trigger alpha * t on 20% of the training images, "
                                  "labels + Delta_max * alpha; trigger= uap-dct (optimised) or a baseline")
    label_mode: ClassVar[str] = "poison"
    sampling: Sampling = "paper"

    def strengths(self, ctx, mos):
        gen = torch.Generator().manual_seed(ctx.seed)
        alphas = sample_alphas(self.sampling, mos.shape[0], gen)
        return alphas, shifted_labels(mos, alphas, self.delta_max * ctx.delta_scale)


@dataclass
class BAIQACleanLabel(BAIQABase):
    """C-BAIQA: labels kept, alpha from the label, adversarial image towards the mean, then the trigger."""

    name: ClassVar[str] = "baiqa-c"
    description: ClassVar[str] = ("BAIQA clean-label backdoor: labels kept, alpha = (y - mean) / Delta_max, "
                                  "PGD towards the mean score on the surrogate, then the trigger")
    label_mode: ClassVar[str] = "clean"
    checkpointed: ClassVar[bool] = True  # PGD per image: hours at the release's sizes on a CPU
    mean_score: float | None = None  # None: the middle of the dataset's MOS range (50 on 0-100)
    pgd_eps: float = 2 / 255
    pgd_step: float = 0.00627
    pgd_iters: int | None = None
    pgd_crops: int | None = None
    pgd_crop: int | None = None  # None: the crop of the model's training recipe

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "pgd_eps", "pgd_step", "pgd_iters", "pgd_crops")
        if self.pgd_crop is not None:
            check_positive(self, "pgd_crop")

    def mean(self, ctx: BackdoorContext) -> float:
        if self.mean_score is not None:
            return float(self.mean_score)
        lo, hi = ctx.dataset.mos_range
        return (lo + hi) / 2

    def strengths(self, ctx, mos):
        return alpha_from_label(mos, self.mean(ctx), self.delta_max * ctx.delta_scale), mos.clone()

    def start_poisoning(self, ctx: BackdoorContext) -> None:
        # Loading the surrogate reseeds torch's RNG and draws its random init
        # (build_model).  Where the trigger did not load it already, it is
        # loaded here, just where the first batch used to load it (so every
        # published poison stays the same), not inside whichever batch a
        # resumed run computes first: that would move every later crop.
        ctx.surrogate()

    def poison_batch(self, ctx, trigger, x, alphas):
        surrogate = ctx.surrogate()
        crop = self.pgd_crop if self.pgd_crop is not None else ctx.recipe.crop  # None: the victim's crops
        pgd = PGD(norm="linf", eps=self.pgd_eps, step=self.pgd_step, iters=self.pgd_iters, target=self.mean(ctx),
                  eot_crops=self.pgd_crops, crop_size=max(crop, surrogate.min_size))
        adv = pgd.perturb(surrogate, x).images
        return trigger.apply(adv, alphas)
