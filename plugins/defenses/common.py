"""Small helpers shared by the defences."""
from __future__ import annotations

from dataclasses import replace

from iqabench.contracts import IQAModel, TrainRecipe
from iqabench.errors import ParameterError


def model_recipe(model: IQAModel, profile: str, epochs: int, owner: str) -> TrainRecipe:
    """The model's recipe ``profile``; ``epochs`` > 0 replaces its length (one stage,
    every other setting kept) -- the CPU-sized variant of the standard recipe."""
    if epochs < 0:
        raise ParameterError(f"{owner!r} parameter 'epochs' must be >= 0, got {epochs!r}")
    recipe = model.recipe(profile)
    if not epochs:
        return recipe
    return replace(recipe, epochs=epochs, extra={k: v for k, v in recipe.extra.items() if k != "phases"})
