"""The ``iqabench`` command line.

Heavy modules (torch, pyiqa) are imported inside the commands, so that
``iqabench --help`` stays fast.  Every user-fixable error is printed as one
line ``Error: ...`` with a non-zero exit status, never as a traceback
(``IQABENCH_DEBUG=1`` shows tracebacks for unexpected errors).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import IQABenchError

DEFAULT_STORE = "iqabench-results/store.sqlite"


class IQABenchGroup(click.Group):
    """Turns every error into one line ``Error: ...`` and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except IQABenchError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("Error: interrupted (finished batches are kept; rerun to resume)", err=True)
            ctx.exit(130)
        except Exception as exc:  # never a bare traceback
            if os.environ.get("IQABENCH_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            click.echo(f"Error: unexpected {type(exc).__name__}: {first} (set IQABENCH_DEBUG=1 for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=IQABenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iqabench")
def cli() -> None:
    """Benchmark the security of image-quality-assessment models.

    Run `iqabench run` with no arguments for the default benchmark.
    """


# ---------------------------------------------------------------------- run
@cli.command()
@click.option("--model", "-m", "models", multiple=True, help="Model name (repeatable).")
@click.option("--dataset", "-d", "datasets", multiple=True, help="Dataset name (repeatable).")
@click.option("--attack", "-a", "attacks", multiple=True, help="Attack name (repeatable; '*' = every adversarial attack).")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="Attack parameter, e.g. eps=8/255.")
@click.option("--model-param", multiple=True, metavar="KEY=VALUE", help="Model parameter.")
@click.option("--dataset-param", multiple=True, metavar="KEY=VALUE", help="Dataset parameter.")
@click.option("--defense", "defenses", multiple=True, help="Defence name (repeatable; 'none' = undefended).")
@click.option("--defense-param", multiple=True, metavar="[NAME.]KEY=VALUE",
              help="Defence parameter (bare KEY: every listed defence).")
@click.option("--data-root", type=click.Path(), help="Shorthand for --dataset-param data_root=PATH.")
@click.option("--weights", default="default", show_default=True, help="'default', 'random' or a weights file.")
@click.option("--split", default="test", show_default=True, help="Dataset split to attack.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Images per attacked batch.")
@click.option("--limit", type=int, default=0, help="Attack N images of the split, a seeded sample stratified by content and distortion (0: all).")
@click.option("--suite", help="Suite TOML file, or the name of a registered suite.")
@click.option("--force", is_flag=True, help="Recompute cells that are already finished.")
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="IQABENCH_STORE", help="Results database.")
@click.option("--leaderboard", "board", default="leaderboard", show_default=True, help="Where to render the leaderboard.")
@click.option("--no-leaderboard", is_flag=True, help="Do not render the leaderboard after the run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--no-baselines", is_flag=True,
              help="Do not add each defended cell's like-for-like baseline (NT: lam=0 with its recipe and "
                   "seed; post-training defences: the undefended model).")
@click.option("--profile", type=click.Choice(["quick", "default", "paper"]), default=None,
              help="Size of attacks that train (backdoors): sets their 'profile' parameter.")
def run(models, datasets, attacks, params, model_param, dataset_param, defenses, defense_param, data_root, weights, split, seed, device,
        batch_size, limit, suite, force, store, board, no_leaderboard, quiet, no_baselines, profile) -> None:
    """Attack models and store per-image results and cell summaries.

    With no --model/--attack/--suite, runs the default suite (embedded data,
    default model, every adversarial attack that suits it).
    """
    from .defended import parse_defense_params
    from .params import parse_assignments
    from .runner import Runner, adversarial_attacks_for
    from .suite import expand, load_suite

    if suite and (models or attacks or datasets or params or defenses or defense_param):
        raise IQABenchError("--suite cannot be combined with --model/--dataset/--attack/--param/--defense: "
                            "put them in the suite file")
    if defense_param and not defenses:
        raise IQABenchError("--defense-param needs a --defense")
    if suite or not (models or attacks or datasets or defenses):
        data, text = load_suite(suite or "default")
        cells = expand(data, suite or "suite 'default'", adversarial_attacks_for)
        suite_text = text
    else:
        defaults, _ = load_suite("default")
        models = models or tuple(defaults["models"])[:1]
        datasets = datasets or tuple(defaults["datasets"])[:1]
        attacks = attacks or ("*",)
        data = {"models": list(models), "datasets": list(datasets), "attacks": list(attacks),
                "seeds": [seed], "split": split, "batch_size": batch_size, "weights": weights, "limit": limit,
                "defenses": list(dict.fromkeys(defenses)) or ["none"]}
        cells = expand(data, "command line", adversarial_attacks_for)
        ap, mp, dp = parse_assignments(params), parse_assignments(model_param), _dataset_params(dataset_param, data_root)
        fp = parse_defense_params(parse_assignments(defense_param), data["defenses"])
        for c in cells:
            c.attack_params, c.model_params, c.dataset_params = dict(ap), dict(mp), dict(dp)
            c.defense_params = dict(fp[c.defense])
        suite_text = None
    if quiet:  # every bar, including those plugins open, reads this
        os.environ["IQABENCH_PROGRESS"] = "0"
    if profile:
        _set_profile(cells, profile)
    runner = Runner(store, device=device, force=force, show_progress=not quiet, baselines=not no_baselines)
    summaries = runner.run(cells)
    _print_summaries(summaries)
    if not no_leaderboard:
        from .leaderboard import render

        written = render(runner.store, board)
        if suite_text is not None:
            (Path(board) / "suite.toml").write_text(suite_text)
        click.echo(f"leaderboard: {', '.join(str(p) for p in written)}")


def _set_profile(cells, profile: str) -> None:
    """``--profile``: the ``profile`` parameter of every attack that has one."""
    from .params import param_specs
    from .plugins import lookup

    for c in cells:
        if "profile" in param_specs(lookup("attack", c.attack).obj):
            c.attack_params.setdefault("profile", profile)


def _dataset_params(pairs, data_root) -> dict:
    from .params import parse_assignments

    params = parse_assignments(pairs)
    if data_root:
        params["data_root"] = data_root
    return params


def _number(value, spec: str) -> str:
    """A figure of a summary; ``n/a`` where none could be computed (stored as null)."""
    return "n/a" if value is None or value != value else format(value, spec)


def _print_summaries(summaries) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="iqabench results (normalised with each model's fixed clean range)")
    for col in ("model", "dataset", "attack", "n", "abs. gain", "rel. gain", "robustness", "Wasserstein", "energy",
                "PSNR", "score RMSE"):
        table.add_column(col)
    for s in summaries:
        if s.get("kind") == "backdoor":
            continue
        spec = s["spec"]
        defense = spec.get("defense", "none")
        table.add_row(spec["model"] + (f" +{defense}" if defense != "none" else ""),
                      f"{spec['dataset']}/{spec['split']}", s["attack"], str(s["n"]),
                      *(_number(s.get(k), ".4f") for k in ("abs_gain", "rel_gain", "robustness", "wasserstein", "energy")),
                      _number(s.get("psnr"), ".2f"), _number(s.get("score_rmse"), ".3f"))
    if len(table.rows):
        Console().print(table)
    from .backdoor_board import print_summaries

    print_summaries([s for s in summaries if s.get("kind") == "backdoor"])


# -------------------------------------------------------------------- train
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
    from .params import parse_assignments
    from .runner import resolve_device
    from .trained import train_cached

    result = train_cached(model, dataset, parse_assignments(model_param), _dataset_params(dataset_param, data_root),
                          profile=profile, seed=seed, device=resolve_device(device), output=output, force=force)
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
    from .scores import score_csv

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
    """Render the results store into CSV and Markdown tables."""
    from .leaderboard import render
    from .store import Store

    if not Path(store).exists():
        raise IQABenchError(f"results store not found: {store} (run `iqabench run` first)")
    for path in render(Store(store), output):
        click.echo(str(path))


# ------------------------------------------------------------------ plugins
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json) -> None:
    """List installed plugins, their versions and what each registered."""
    from .plugins import plugin_infos, registered_by

    out = []
    for name, info in sorted(plugin_infos().items(), key=lambda kv: (not kv[1].builtin, kv[0])):
        out.append({"name": name, "distribution": info.distribution, "version": info.version,
                    "builtin": info.builtin, "registered": registered_by(name)})
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for p in out:
        origin = "built-in" if p["builtin"] else "third-party"
        click.echo(f"{p['name']} ({p['distribution']} {p['version']}, {origin})")
        for kind, names in p["registered"].items():
            click.echo(f"  {kind}: {', '.join(names)}")


@cli.command()
@click.argument("kind", type=click.Choice(["model", "dataset", "attack", "trigger", "defense"]))
@click.argument("name")
def describe(kind, name) -> None:
    """Show a component's description and typed parameters with defaults."""
    from .params import param_specs
    from .plugins import lookup

    entry = lookup(kind, name)
    click.echo(f"{kind} {name} (plugin {entry.plugin}): {entry.description}")
    for spec in param_specs(entry.obj).values():
        default = "required" if spec.required else repr(spec.default)
        flag = {"model": "--model-param", "dataset": "--dataset-param", "defense": "--defense-param"}.get(kind, "--param")
        click.echo(f"  {flag} {spec.name}: {spec.type_name()} = {default}")


def _load_plugin_commands() -> None:
    from .plugins import add_commands

    add_commands(cli)


def main() -> None:
    try:
        _load_plugin_commands()
    except IQABenchError as exc:  # a broken third-party plugin
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    cli.main(prog_name="iqabench")


if __name__ == "__main__":
    main()
