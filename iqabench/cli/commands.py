"""The other commands: ``train``, ``score``, ``leaderboard``, ``plugins``, ``describe``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import IQABenchError
from .group import DEFAULT_STORE, cli


@cli.command()
@click.option("--model", "-m", required=True, help="Model name.")
@click.option("--dataset", "-d", required=True, help="Dataset name.")
@click.option("--model-param", multiple=True, metavar="KEY=VALUE")
@click.option("--dataset-param", multiple=True, metavar="KEY=VALUE")
@click.option("--data-root", type=click.Path(), help="Shorthand for --dataset-param data_root=PATH.")
@click.option("--profile", default="default", show_default=True, help="Training recipe profile (e.g. quick, paper).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Weights file to write (default: the artifact cache).")
@click.option("--force", is_flag=True, help="Retrain even if the cached artifact exists.")
def train(model, dataset, model_param, dataset_param, data_root, profile, seed, device, output, force) -> None:
    """Train a model with its recipe and report SROCC/PLCC/RMSE on the test split."""
    from ..contracts import RunContext
    from ..models.trained import train_cached
    from ..params import parse_assignments
    from ..run.runner import resolve_device
    from .params import dataset_params

    result = train_cached((model, parse_assignments(model_param)), (dataset, dataset_params(dataset_param, data_root)),
                          RunContext(device=resolve_device(device), seed=seed), profile=profile, output=output,
                          force=force)
    card = result["card"]
    click.echo(f"weights: {result['path']}")
    t = card["test"]
    click.echo(f"test SROCC {t['srocc']:.4f}  PLCC {t['plcc']:.4f}  RMSE {t['rmse']:.3f}  "
               f"(train {card['train_seconds']:.0f} s, score range {card['score_range'][0]:.3f}..{card['score_range'][1]:.3f})")


# -------------------------------------------------------------------- score
@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--clean-col", required=True, help="Column of clean scores.")
@click.option("--attacked-col", required=True, help="Column of attacked scores.")
@click.option("--range", "score_range", nargs=2, type=float, required=True, metavar="LOW HIGH",
              help="The model's FIXED clean score range used to normalise.")
@click.option("--lower-better", is_flag=True, help="The model's scores are lower-is-better.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def score(file, clean_col, attacked_col, score_range, lower_better, as_json) -> None:
    """Score per-image results produced elsewhere (a CSV) with the five scores."""
    from ..metrics.scores import score_csv

    s = score_csv(file, clean_col, attacked_col, score_range[0], score_range[1], lower_better=lower_better)
    if as_json:
        click.echo(json.dumps(s, indent=2, default=float))
        return
    click.echo(f"images:           {s['n']}")
    for key, label in (("abs_gain", "absolute gain"), ("rel_gain", "relative gain"), ("robustness", "robustness score"),
                       ("wasserstein", "Wasserstein score"), ("energy", "energy score")):
        ci = s.get(f"{key}_ci")
        tail = f"  (95% CI {ci[0]:.4f} .. {ci[1]:.4f})" if ci is not None else ""
        click.echo(f"{label + ':':18}{s[key]:.4f}{tail}")


# -------------------------------------------------------------- leaderboard
@cli.command()
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="IQABENCH_STORE")
@click.option("--output", "-o", default="leaderboard", show_default=True)
def leaderboard(store, output) -> None:
    """Render the results store into CSV and Markdown tables and the static site (as ``report``)."""
    from ..board.page import render
    from ..run.store import Store

    if not Path(store).exists():
        raise IQABenchError(f"results store not found: {store} (run `iqabench run` first)")
    for path in render(Store(store), output):
        click.echo(str(path))


# ------------------------------------------------------------------ plugins
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json) -> None:
    """List installed plugins, their versions and what each registered, with descriptions."""
    from ..registry import described_by, plugin_infos

    out = []
    for name, info in sorted(plugin_infos().items(), key=lambda kv: (not kv[1].builtin, kv[0])):
        described = described_by(name)
        out.append({"name": name, "distribution": info.distribution, "version": info.version,
                    "builtin": info.builtin, "registered": {kind: list(d) for kind, d in described.items()},
                    "descriptions": described})
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for p in out:
        origin = "built-in" if p["builtin"] else "third-party"
        click.echo(f"{p['name']} ({p['distribution']} {p['version']}, {origin})")
        for kind, described in p["descriptions"].items():
            click.echo(f"  {kind}:")
            for component, description in described.items():
                click.echo(f"    {component}: {description}" if description else f"    {component}")


@cli.command()
@click.argument("kind", type=click.Choice(["model", "dataset", "attack", "trigger", "defense"]))
@click.argument("name")
def describe(kind, name) -> None:
    """Show a component's description and typed parameters with defaults (a model's
    orientation, weights and fixed score range too)."""
    from ..params import param_specs
    from ..registry import lookup

    entry = lookup(kind, name)
    click.echo(f"{kind} {name} (plugin {entry.plugin}): {entry.description}")
    if kind == "model":
        for line in _model_facts(name, entry.obj):
            click.echo(f"  {line}")
    for spec in param_specs(entry.obj).values():
        default = "required" if spec.required else repr(spec.default)
        flag = {"model": "--model-param", "dataset": "--dataset-param", "defense": "--defense-param"}.get(kind, "--param")
        click.echo(f"  {flag} {spec.name}: {spec.type_name()} = {default}")


def _model_facts(name: str, cls) -> list[str]:
    """Orientation, weights and score range of model ``name`` with its default
    weights (built on the CPU: the card and the model say them)."""
    from ..models.build import build_model

    facts = [f"lower_better: {cls.lower_better}"]
    try:
        model = build_model(name)
    except IQABenchError as exc:
        return [*facts, f"weights and score range: known once built ({exc})"]
    if model.score_range is None:
        source = "none fixed: measured once per dataset on first use, then cached"
    else:
        low, high = model.score_range
        origin = "its model card" if (model.card or {}).get("score_range") else "set by the model"
        source = f"{low:g}..{high:g} ({origin})"
    return [*facts, f"weights: {model.weights}", f"score range: {source}"]
