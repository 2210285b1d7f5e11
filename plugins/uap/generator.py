"""The U-Net generator of the generative UAP (the MSU reference's
``UnetGenerator``, pix2pix style), with its depth as a parameter.

At ``depth=8`` it is the reference network: 4x4 stride-2 convolutions
``ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...`` (LeakyReLU 0.2 before each but the
first, instance norm on all but the first and the innermost), mirrored 4x4
stride-2 transposed convolutions with ReLU before each, instance norm,
dropout 0.5 on the three innermost decoder levels, skip connections by
concatenation, and ``tanh`` at the output.  The input side must be a
multiple of ``2**depth`` (256 for the reference).
"""
from __future__ import annotations

import torch
from torch import nn


class UnetGenerator(nn.Module):
    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, depth: int = 8) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"U-Net depth must be >= 2, got {depth}")
        self.depth = depth
        ch = [ngf * min(2**i, 8) for i in range(depth)]
        self.down = nn.ModuleList(
            [nn.Conv2d(in_channels, ch[0], 4, 2, 1)] + [nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1) for i in range(1, depth)]
        )
        self.down_norm = nn.ModuleList([nn.InstanceNorm2d(ch[i]) for i in range(1, depth - 1)])
        ups, up_norm = [], []
        for k in range(1, depth):
            cin = ch[depth - 1] if k == 1 else 2 * ch[depth - k]
            ups.append(nn.ConvTranspose2d(cin, ch[depth - 1 - k], 4, 2, 1))
            up_norm.append(nn.InstanceNorm2d(ch[depth - 1 - k]))
        ups.append(nn.ConvTranspose2d(2 * ch[0], out_channels, 4, 2, 1))
        self.up = nn.ModuleList(ups)
        self.up_norm = nn.ModuleList(up_norm)
        self.leaky = nn.LeakyReLU(0.2)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.down[0](x)]
        for i in range(1, self.depth):
            h = self.down[i](self.leaky(skips[-1]))
            if i < self.depth - 1:
                h = self.down_norm[i - 1](h)
            skips.append(h)
        h = skips[-1]
        for k in range(1, self.depth):
            h = self.up_norm[k - 1](self.up[k - 1](self.act(h)))
            if k <= 3:
                h = self.dropout(h)
            h = torch.cat([h, skips[self.depth - 1 - k]], dim=1)
        return torch.tanh(self.up[-1](self.act(h)))
