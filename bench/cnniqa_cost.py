"""Two costs of the default model that dominate the default suite on a CPU, each
against its baseline measured in the same run (not a test; tests check that the
fast paths give the same bits).

* Inference: cnniqa's max and min pools over the stride grid.  Without a
  gradient they reduce strided views (``unfold`` + ``amax``/``amin``) instead
  of ``max_pool2d``, which also tracks the indices a backward pass would
  need.  Baseline: the same forward with the pooling of a gradient pass.
* An NT training step: the crops require grad for the penalty's input
  gradient; the step's backward now asks for the parameters' gradients only
  (``backward(inputs=params)``).  Baseline: the plain ``backward()``, which
  also fills the crops' gradient.

    python bench/cnniqa_cost.py [--batch 16] [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import time
from unittest import mock

import torch
import torch.nn.functional as F

import iqabench_plugins.models.cnniqa as cnniqa
from iqabench.registry import lookup
from iqabench_plugins.defenses.nt import gradient_norm_penalty


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def gradient_pass_pool(x, window, stride):
    return F.max_pool2d(F.max_pool2d(x, (window, 1), (stride, 1)), (1, window), (1, stride))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = lookup("model", "cnniqa").obj().eval()
    images = torch.rand(args.batch, 3, 192, 192, generator=torch.Generator().manual_seed(0))

    def score():
        with torch.no_grad():
            return model(images)

    fast = timed(score, args.repeats)
    with mock.patch.object(cnniqa, "_pool_no_grad",
                           lambda x, w, s, reduce: gradient_pass_pool(x, w, s) if reduce is torch.amax
                           else -gradient_pass_pool(-x, w, s)):
        slow = timed(score, args.repeats)
    print(f"inference, {args.batch} images of 192 px: {slow:.3f} s -> {fast:.3f} s per batch "
          f"({slow / fast:.2f}x)")

    crops = images[:8]
    mos = torch.rand(8, generator=torch.Generator().manual_seed(1)) * 100
    params = [p for p in model.parameters() if p.requires_grad]

    def nt_step(restricted: bool):
        x = crops.clone().requires_grad_(True)
        pred = model.training_forward(x)
        loss = (pred - mos).abs().mean() + gradient_norm_penalty(model.training_forward, x, pred, 1.6e-8, 2.26e-3)
        for p in params:
            p.grad = None
        loss.backward(inputs=params) if restricted else loss.backward()

    before = timed(lambda: nt_step(False), args.repeats)
    after = timed(lambda: nt_step(True), args.repeats)
    print(f"NT step, 8 crops of 192 px: {before:.3f} s -> {after:.3f} s ({before / after:.2f}x)")


if __name__ == "__main__":
    main()
