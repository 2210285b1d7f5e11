"""``iqabench run``: the cells asked for (options or a suite), run, printed, rendered."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import IQABenchError
from .group import DEFAULT_STORE, cli


@dataclass
class RunOptions:
    """The options of ``iqabench run``, as click parses them."""

    models: tuple[str, ...]
    datasets: tuple[str, ...]
    attacks: tuple[str, ...]
    params: tuple[str, ...]
    model_param: tuple[str, ...]
    dataset_param: tuple[str, ...]
    defenses: tuple[str, ...]
    defense_param: tuple[str, ...]
    data_root: str | None
    weights: str
    split: str
    seed: int
    device: str
    batch_size: int
    limit: int
    train_limit: int
    suite: str | None
    force: bool
    store: str
    board: str
    no_leaderboard: bool
    quiet: bool
    no_baselines: bool
    profile: str | None
    gallery: int
    save_images: str | None
    jpeg_quality: int
    transfer_from: str | None
    executor: str = "local"
    ray_address: str | None = None
    gpus_per_cell: float = 0.0
    cpus_per_cell: float = 1.0
    ship_data: bool = True
    trust_store: bool = False


@cli.command()
@click.option("--model", "-m", "models", multiple=True, help="Model name (repeatable).")
@click.option("--dataset", "-d", "datasets", multiple=True, help="Dataset name (repeatable).")
@click.option("--attack", "-a", "attacks", multiple=True,
              help="Attack name (repeatable; '*' = every registered adversarial and universal attack that suits the "
                   "model -- the universal ones train on --train-limit images of the train split).")
@click.option("--param", "-p", "params", multiple=True, metavar="[NAME.]KEY=VALUE",
              help="Attack parameter, e.g. eps=8/255 (bare KEY: every listed attack; ifgsm.iters=5: one).")
@click.option("--model-param", multiple=True, metavar="KEY=VALUE", help="Model parameter.")
@click.option("--dataset-param", multiple=True, metavar="KEY=VALUE", help="Dataset parameter.")
@click.option("--defense", "defenses", multiple=True, help="Defence name (repeatable; 'none' = undefended).")
@click.option("--defense-param", multiple=True, metavar="[NAME.]KEY=VALUE",
              help="Defence parameter (bare KEY: every listed defence).")
@click.option("--data-root", type=click.Path(), help="Shorthand for --dataset-param data_root=PATH.")
@click.option("--weights", default="default", show_default=True,
              help="'default', 'random', a weights file, or trained:seed=N[,profile=P] (the model trained with its "
                   "recipe on the cell's dataset, as `iqabench train` does; trained once, cached).")
@click.option("--split", default="test", show_default=True, help="Dataset split to attack.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Images per attacked batch.")
@click.option("--limit", type=int, default=0,
              help="Attack N images of the split, a seeded sample stratified by content and distortion (0: all).")
@click.option("--train-limit", type=int, default=0,
              help="Train universal attacks on N images of the train split, sampled as --limit (0: all).")
@click.option("--suite", help="Suite TOML file, or the name of a registered suite.")
@click.option("--force", is_flag=True, help="Recompute cells that are already finished.")
@click.option("--trust-store", is_flag=True,
              help="Skip a cell spec whose cells the store records as planned and finished without planning it "
                   "(no model is trained to learn its keys): for a lost artifact cache, an imported store, another "
                   "machine. Trusts the spec and its resolved parameters, not the code: after changing code that "
                   "changes results, do not use it (or use --force).")
@click.option("--store", default=DEFAULT_STORE, show_default=True, envvar="IQABENCH_STORE", help="Results database.")
@click.option("--leaderboard", "board", default="leaderboard", show_default=True, help="Where to render the leaderboard.")
@click.option("--no-leaderboard", is_flag=True, help="Do not render the leaderboard after the run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--no-baselines", is_flag=True,
              help="Do not add each defended cell's like-for-like baseline (NT: lam=0 with its recipe and "
                   "seed; post-training defences: the undefended model).")
@click.option("--profile", type=click.Choice(["quick", "default", "paper"]), default=None,
              help="Size of attacks that train (backdoors): sets their 'profile' parameter.")
@click.option("--gallery", type=click.IntRange(min=0), default=3, show_default=True,
              help="Thumbnails each evasion cell keeps of its images with the largest gain, beside the store "
                   "(the report's galleries; 0: none).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: cells one after another in this process; ray: on a Ray cluster or every GPU/core of "
                   "this machine (pip install \"iqabench[ray]\").")
@click.option("--ray-address", default=None,
              help="With --executor ray: 'auto' (the running cluster) or ADDR; unset: start a local Ray instance.")
@click.option("--gpus-per-cell", type=float, default=0.0, show_default=True,
              help="With --executor ray: GPUs each cell reserves (fractions share a GPU).")
@click.option("--cpus-per-cell", type=float, default=1.0, show_default=True,
              help="With --executor ray: CPU cores each cell reserves.")
@click.option("--ship-data/--no-ship-data", default=True, show_default=True,
              help="With --executor ray: send the files of datasets read from files to workers that cannot see "
                   "them (--no-ship-data: every node sees them, e.g. on a shared filesystem).")
@click.option("--save-images", type=click.Path(file_okay=False),
              help="Write every attacked image to DIR as a lossless 8-bit PNG (JPEG with --jpeg-quality); the "
                   "rows then score those files, as a user reloading them would (another cell key).")
@click.option("--jpeg-quality", type=click.IntRange(0, 100), default=0,
              help="Score the attacked (and clean) images after JPEG re-encoding at this quality (0: none).")
@click.option("--transfer-from", metavar="MODEL[@WEIGHTS]",
              help="Craft every attack on MODEL (its default or the given weights, e.g. cnniqa@trained:seed=1) and "
                   "score it on the attacked model: a transfer attack (another cell key).")
def run(**options) -> None:
    """Attack models and store per-image results and cell summaries.

    With no --model/--attack/--suite, runs the default suite (embedded data,
    default model, every adversarial and universal attack that suits it).
    """
    from ..board.page import render
    from .summaries import print_summaries

    opts = RunOptions(**options)
    cells, suite_text = requested_cells(opts)
    if opts.quiet:  # every bar, including those plugins open, reads this
        os.environ["IQABENCH_PROGRESS"] = "0"
    if opts.profile:
        set_profile(cells, opts.profile)
    if opts.jpeg_quality:
        for c in cells:
            c.jpeg_quality = opts.jpeg_quality
    if opts.transfer_from:
        name, _, weights = opts.transfer_from.partition("@")
        for c in cells:
            c.transfer_from = {"model": name, "model_params": {}, "weights": weights or "default"}
    runner = make_runner(opts)
    summaries = runner.run(cells)
    print_summaries(summaries)
    if not opts.no_leaderboard:
        written = render(runner.store, opts.board)
        if suite_text is not None:
            (Path(opts.board) / "suite.toml").write_text(suite_text)
        click.echo(f"leaderboard: {', '.join(str(p) for p in written)}")


def make_runner(opts: RunOptions):
    """The local runner, or the Ray runner with ``--executor ray``."""
    from ..run.runner import Runner, open_run

    ray_only = {"--ray-address": opts.ray_address is not None, "--gpus-per-cell": opts.gpus_per_cell != 0.0,
                "--cpus-per-cell": opts.cpus_per_cell != 1.0, "--no-ship-data": not opts.ship_data}
    if opts.executor != "ray" and any(ray_only.values()):
        raise IQABenchError(f"{', '.join(k for k, v in ray_only.items() if v)} needs --executor ray")
    ctx = open_run(opts.store, opts.device, opts.force, not opts.quiet, opts.save_images)
    ctx.gallery = opts.gallery
    if opts.executor == "ray":
        from ..run.ray_executor import RayOptions, RayRunner

        options = RayOptions(opts.ray_address, opts.gpus_per_cell, opts.cpus_per_cell, ship_data=opts.ship_data)
        return RayRunner(ctx, baselines=not opts.no_baselines, options=options, trust_store=opts.trust_store)
    return Runner(ctx, baselines=not opts.no_baselines, trust_store=opts.trust_store)


def requested_cells(opts: RunOptions) -> tuple[list, str | None]:
    """The cells of the suite named by ``--suite`` (or of the default suite) with
    its text, or the cells the options name (and None)."""
    from ..params import parse_assignments
    from ..run.plan import validate_cell, wildcard_attacks
    from ..run.suite import expand, load_suite
    from .params import dataset_params, defense_params, targeted_params

    if opts.suite and (opts.models or opts.attacks or opts.datasets or opts.params or opts.defenses
                       or opts.defense_param):
        raise IQABenchError("--suite cannot be combined with --model/--dataset/--attack/--param/--defense: "
                            "put them in the suite file")
    if opts.defense_param and not opts.defenses:
        raise IQABenchError("--defense-param needs a --defense")
    if opts.suite or not (opts.models or opts.attacks or opts.datasets or opts.defenses):
        data, text = load_suite(opts.suite or "default")
        return expand(data, opts.suite or "suite 'default'", wildcard_attacks, validate_cell), text
    defaults, _ = load_suite("default")
    data = {"models": list(opts.models or tuple(defaults["models"])[:1]),
            "datasets": list(opts.datasets or tuple(defaults["datasets"])[:1]),
            "attacks": list(opts.attacks or ("*",)), "seeds": [opts.seed], "split": opts.split,
            "batch_size": opts.batch_size, "weights": opts.weights, "limit": opts.limit,
            "train_limit": opts.train_limit,
            "defenses": list(dict.fromkeys(opts.defenses)) or ["none"]}
    cells = expand(data, "command line", wildcard_attacks)
    attacks = list(dict.fromkeys(c.attack for c in cells))
    ap = targeted_params(parse_assignments(opts.params), attacks, "--param", "attack",
                         f"the attacks of this run ({', '.join(attacks)})")
    mp, dp = parse_assignments(opts.model_param), dataset_params(opts.dataset_param, opts.data_root)
    fp = defense_params(parse_assignments(opts.defense_param), data["defenses"])
    for c in cells:
        c.attack_params, c.model_params, c.dataset_params = dict(ap[c.attack]), dict(mp), dict(dp)
        c.defense_params = dict(fp[c.defense])
    return cells, None


def set_profile(cells: list, profile: str) -> None:
    """``--profile``: the ``profile`` parameter of every attack that has one."""
    from ..params import param_specs
    from ..registry import lookup

    for c in cells:
        if "profile" in param_specs(lookup("attack", c.attack).obj):
            c.attack_params.setdefault("profile", profile)
