"""Throughput of iqabench's batched attacks against a per-image loop and the
cost floor, on the default model (not a test).

For I-FGSM (10 iterations) and the optimized UAP (training), images/second of

(a) iqabench's batched implementation at ``--batch-size``;
(b) a per-image loop written the way the MSU reference research code does
    it: one image at a time, a ``requires_grad`` perturbation, ``backward``,
    in-place ``.data`` updates -- the same arithmetic;
(c) the cost floor: T x (forward + backward) of the model at the same batch
    size, i.e. the model's own cost with no attack arithmetic at all.

Printed ratios: batched / per-image (the batching speed-up) and
batched / floor (1.0 means the attack adds nothing on top of the model).
The model's parameters are frozen in all three, as the runner freezes them.

    python bench/attacks.py [--device cuda] [--batch-size 16] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

import iqabench
from iqabench.contracts import normalised_gain
from iqabench.gradients import gain_and_grad
from iqabench_plugins.adversarial.fgsm import IFGSM
from iqabench_plugins.uap.uap import OptimizedUAP


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def compare(fns: dict, device: str, repeats: int) -> dict:
    """Best wall time of each function over ``repeats`` rounds, after one
    warm-up round.  The functions take turns within each round, so that a
    drift in machine load affects all of them alike."""
    for fn in fns.values():
        fn()
    _sync(device)
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


# ------------------------------------------------------------- I-FGSM ---
def ifgsm_per_image(model, x, eps=10 / 255, alpha=1 / 255, iters=10, metric_range=1.0):
    """The reference loop (MSU methods/ifgsm/run.py style), one image at a time."""
    out = []
    for i in range(x.shape[0]):
        image = x[i:i + 1]
        p = torch.zeros_like(image, requires_grad=True)
        for _ in range(iters):
            res = image + p
            res.data.clamp_(0.0, 1.0)
            loss = 1 - model.direction * model(res).sum() / metric_range
            loss.backward()
            p.data -= alpha * torch.sign(p.grad)
            p.data.clamp_(-eps, eps)
            p.grad.zero_()
        out.append((image + p).data.clamp(0, 1))
    return torch.cat(out)


def floor(model, x, steps: int):
    for _ in range(steps):
        gain_and_grad(model, x)


# ---------------------------------------------------------------- UAP ---
def uap_per_image(model, images, size, epochs, lr=0.001, eps=0.1, metric_range=1.0):
    """The reference UAP training loop (methods/uap/train.py) with batch size 1."""
    noise = torch.full((1, 3, size, size), 1e-4, device=images.device, requires_grad=True)
    opt = torch.optim.Adam([noise], lr=lr)
    for _ in range(epochs):
        for i in range(images.shape[0]):
            y = images[i:i + 1]
            res = y + noise
            res.data.clamp_(0.0, 1.0)
            loss = 1 - model.direction * model(res).mean() / metric_range
            opt.zero_grad()
            loss.backward()
            opt.step()
            noise.data.clamp_(-eps, eps)
    return noise.detach()


def uap_floor(model, batches, epochs, size, device):
    u = torch.zeros(1, 3, size, size, device=device, requires_grad=True)
    for _ in range(epochs):
        for x in batches:
            torch.autograd.grad(normalised_gain(model, model((x + u).clamp(0, 1))).mean(), u)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    ap.add_argument("--iters", type=int, default=10, help="I-FGSM iterations")
    ap.add_argument("--uap-epochs", type=int, default=1)
    ap.add_argument("--uap-batches", type=int, default=2, help="training batches of --batch-size images")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats (best is kept)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev, bs = args.device, args.batch_size

    model = iqabench.get_model("cnniqa", device=dev).requires_grad_(False)
    ds = iqabench.get_dataset("embedded")
    items = list(ds.items("test"))
    n_uap = bs * args.uap_batches
    pool = torch.stack([ds.load(items[i % len(items)]) for i in range(max(bs, n_uap))]).to(dev)
    x = pool[:bs]
    size = x.shape[-1]
    print(f"device {dev}, threads {torch.get_num_threads()}, batch {bs}, images {tuple(x.shape[1:])}, "
          f"model {model.name} ({model.weights})")

    rows = []
    attack = IFGSM(iters=args.iters)
    t = compare({
        "batched": lambda: attack.perturb(model, x),
        "per-image": lambda: ifgsm_per_image(model, x, iters=args.iters),
        "floor": lambda: floor(model, x, args.iters),
    }, dev, args.repeats)
    rows.append(("ifgsm", bs, t["batched"], t["per-image"], t["floor"]))

    os.environ["IQABENCH_PROGRESS"] = "0"  # no bar inside the timed fit
    batches = [pool[i:i + bs] for i in range(0, n_uap, bs)]
    uap = OptimizedUAP(size=size, epochs=args.uap_epochs)
    t = compare({
        "batched": lambda: uap.fit(model, batches, dev),
        "per-image": lambda: uap_per_image(model, pool[:n_uap], size, args.uap_epochs),
        "floor": lambda: uap_floor(model, batches, args.uap_epochs, size, dev),
    }, dev, args.repeats)
    rows.append(("uap (fit)", n_uap * args.uap_epochs, t["batched"], t["per-image"], t["floor"]))

    print(f"{'attack':<12}{'batched img/s':>15}{'per-image img/s':>17}{'floor img/s':>13}"
          f"{'batched/per-image':>19}{'batched/floor':>15}")
    for name, count, tb, ts, tf in rows:
        print(f"{name:<12}{count / tb:>15.2f}{count / ts:>17.2f}{count / tf:>13.2f}{ts / tb:>19.2f}{tf / tb:>15.2f}")


if __name__ == "__main__":
    main()
