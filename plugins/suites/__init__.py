"""Named suites shipped with iqabench (``iqabench run --suite NAME``)."""
from importlib.resources import files

from iqabench.hookspecs import hookimpl


@hookimpl
def register_suites(register):
    register(
        "default",
        files(__name__).joinpath("default.toml").read_text(),
        "Embedded data, the default CNNIQA model: every adversarial attack that suits it, and the attack x defence matrix.",
    )
    register(
        "backdoor-defenses",
        files(__name__).joinpath("backdoor-defenses.toml").read_text(),
        "P-BAIQA on the default model x {none, finetune, prune 0.1-0.6}: the backdoor x defence table and curves.",
    )
    register(
        "backdoor-table",
        files(__name__).joinpath("backdoor-table.toml").read_text(),
        "BAIQA Table 1 on the default model: P- and C-BAIQA with UAP-DCT, blended, WaNet and FTrojan triggers.",
    )
    register(
        "defences",
        files(__name__).joinpath("defences.toml").read_text(),
        "The defences benchmark on the default model: 11 purifiers non-adaptive and adaptive vs FGSM, I-FGSM, UAP; median smoothing; adversarial training.",
    )
    register(
        "nt-sweep",
        files(__name__).joinpath("nt-sweep.toml").read_text(),
        "NT with the default model's full recipe: 4 lam values x 3 seeds beside the lam=0 baseline (trade-off plot).",
    )
    register(
        "leaderboard",
        files(__name__).joinpath("leaderboard.toml").read_text(),
        "The published board: default, backdoor-table, backdoor-defenses, cbaiqa-budget, nt-sweep and transfer in one store.",
    )
    register(
        "cbaiqa-budget",
        files(__name__).joinpath("cbaiqa-budget.toml").read_text(),
        "C-BAIQA on the default model: PGD eps 2-16/255 x poison ratio 0.2, 0.4 (mMRA against the budget).",
    )
    register(
        "transfer",
        files(__name__).joinpath("transfer.toml").read_text(),
        "FGSM and I-FGSM transfer matrix (3 x 3) between the default model and two CNNIQA models iqabench trains on "
        "the embedded data (trained:seed=1; narrow, trained:seed=0).",
    )
