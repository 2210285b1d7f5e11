"""The driver starts the ready cell expected to take longest (measured times
of the same model and attack, else attack, else model); unknown cells first,
ties in plan order."""
from iqabench.run.schedule import CellQueue


def _cfg(model, attack):
    return {"model": {"name": model}, "attack": {"name": attack}}


def test_longest_expected_first_unknown_first_ties_in_plan_order():
    q = CellQueue()
    q.record(_cfg("a", "fgsm"), 1.0)
    q.record(_cfg("a", "pgd"), 9.0)
    q.record(_cfg("b", "fgsm"), 3.0)
    for name in ("a-fgsm", "a-pgd", "b-fgsm", "b-pgd", "c-new", "c-fgsm", "a-fgsm2"):
        model, attack = name.split("-")
        q.push(_cfg(model, attack.rstrip("2")), name)
    assert q.estimate(_cfg("b", "pgd")) == 9.0  # no b x pgd yet: pgd's mean
    assert q.estimate(_cfg("c", "fgsm")) == 2.0  # fgsm's mean over models
    assert q.estimate(_cfg("c", "new")) is None
    assert [q.pop() for _ in range(len(q))] == ["c-new", "a-pgd", "b-pgd", "b-fgsm", "c-fgsm", "a-fgsm", "a-fgsm2"]
