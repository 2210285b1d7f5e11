"""Backdoor experiments: poison -> train the victim -> evaluate (no attack named).

The contract :class:`iqabench.contracts.BackdoorAttack` asks a plugin for
two things: its trigger (``make_trigger``, e.g. an optimised UAP-DCT pattern
or a fixed baseline) and the poisoning of the training split (``poison``).
Everything else is the harness's job and is the same for every attack and
every trainable model:

1. the poison subset (``attack.ratio`` of the training split, seeded:
   :mod:`.poisoning`);
2. a *surrogate* -- the same architecture trained clean on that subset only,
   as the attacker of BAIQA has it -- on demand, cached (:mod:`.context`);
3. the *victim*: a fresh model trained on the poisoned training split with
   the model's own recipe (:func:`iqabench.models.training.train_model`,
   unchanged: the harness plays the unsuspecting trainer), cached as an
   artifact keyed by its full configuration, so a defence can load and
   re-evaluate it (:mod:`.plan`);
4. the *clean* model ("w/o" row): the same recipe and seed on the clean data
   (shared with ``iqabench train``'s cache, or the shipped weights when their
   card shows they were trained exactly so);
5. both evaluated with :func:`.evaluation.evaluate_backdoor` and stored per
   image and per alpha (one store cell each; the trigger on
   ``attack.eval_images`` test images, 0 = all, the benign metrics on all:
   :mod:`.experiment`).

With a defence (``--defense``), :func:`.defended.defended_victim` applies it
where a defender would -- to the trained victim with clean data
(post-training) or to the victim's training on the poisoned split
(training-time) -- and the defended victim is one more cell, keyed apart
from the undefended ones.

``attack.profile`` (``quick`` | ``default`` | ``paper``) picks the model's
recipe of that name (falling back to ``default`` when the model has none)
for the surrogate, the victim and the clean model.

Modules: ``poisoning`` <- ``context`` <- ``plan`` <- ``defended`` <-
``experiment``; ``evaluation`` beside them.  What plugins and defences use
is re-exported here.
"""
from .context import BackdoorContext, recipe_for
from .defended import defended_victim
from .evaluation import EvalCrops, evaluate_backdoor
from .plan import BackdoorPlan, BackdoorSetup, plan_backdoor, prepare_backdoor, prepare_named

__all__ = ["BackdoorContext", "recipe_for", "defended_victim", "EvalCrops", "evaluate_backdoor", "BackdoorPlan",
           "BackdoorSetup", "plan_backdoor", "prepare_backdoor", "prepare_named"]
