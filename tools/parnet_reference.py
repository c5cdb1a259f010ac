"""A PyTorch ParNet written from /work/shared/docs/PARNET-SPEC.md (sections 2, 3), independently
of the Rust code, as the oracle for the whole-model agreement fixtures.

The module tree mirrors the official code (imankgoyal/NonDeepNetworks, `simpnet.py`,
`repvgg.py`, `utils.py`) so that `state_dict()` keys are the official ones (spec 2.14):

    inits.0.0.block.rbr_dense.conv.weight, ... rbr_1x1.1.conv.weight (stride 2), rbr_identity.*,
    se.cvsig.conv.weight, streams.{s}.{i}.block.*, downsamples_2.0.block.*,
    downsamples_2.1.0.b1.*, downsamples_2.1.0.b2.*, downsamples_2.1.2.block.*,
    combine.0.b1/b2.*, combine.2.block.*, combine.3.block.* (ImageNet) or
    combine.3.conv.weight + combine.3.bn.* (CIFAR reconstruction "R-CIFAR", spec 3), head.fc.*

Usage:
    from parnet_reference import ParNet
    model = ParNet(layout="imagenet", widths=(92, 192, 384, 1280), num_classes=1000,
                   activation="silu")
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBN(nn.Sequential):
    """k x k conv (no bias, padding k//2) then BatchNorm2d: keys `conv.*`, `bn.*` (spec 2.1)."""

    def __init__(self, cin, cout, kernel, stride, groups):
        super().__init__()
        self.add_module(
            "conv",
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        )
        self.add_module("bn", nn.BatchNorm2d(cout))


class ConvOnly(nn.Module):
    """Holder so the SE conv key is `se.cvsig.conv.weight`."""

    def __init__(self, cin, cout, groups):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0, groups=groups, bias=False)

    def forward(self, x):
        return self.conv(x)


class SE1(nn.Module):
    """Gate sigma(W . GAP(x)); times 2 when `ver == 2` (no identity branch), spec 2.2."""

    def __init__(self, cin, cout, groups, ver):
        super().__init__()
        self.ver = ver
        self.cvsig = ConvOnly(cin, cout, groups)

    def gate(self, x):
        g = torch.sigmoid(self.cvsig(F.adaptive_avg_pool2d(x, 1)))
        return 2.0 * g if self.ver == 2 else g


def channel_shuffle(x, groups):
    """out[g*j + i] = in[i*(C/g) + j] (spec 2.5 step 4)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def make_activation(name):
    if name == "silu":
        return nn.SiLU()
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {name!r}")


class RepVGGBlock(nn.Module):
    """The generic block (spec 2.2): dense 3x3 ConvBN, 1x1 ConvBN (after AvgPool2d(2) when
    stride 2), identity BN only when cin == cout and stride 1, SE gate; act; shuffle if g > 1."""

    def __init__(self, cin, cout, stride, groups, activation):
        super().__init__()
        assert stride in (1, 2)
        self.groups = groups
        self.rbr_dense = ConvBN(cin, cout, 3, stride, groups)
        if stride == 1:
            self.rbr_1x1 = ConvBN(cin, cout, 1, 1, groups)
        else:
            self.rbr_1x1 = nn.Sequential(nn.AvgPool2d(2), ConvBN(cin, cout, 1, 1, groups))
        self.rbr_identity = nn.BatchNorm2d(cin) if (cin == cout and stride == 1) else None
        self.se = SE1(cin, cout, groups, ver=1 if self.rbr_identity is not None else 2)
        self.act = make_activation(activation)

    def forward(self, x):
        convs = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            # Case A: the gate (no factor 2) multiplies the BN'd identity; GAP of the BN output.
            i = self.rbr_identity(x)
            y = convs + i * self.se.gate(i)
        else:
            # Case B: 2*sigma(W . GAP(x)) multiplies the conv sum; GAP of the raw input.
            y = convs * self.se.gate(x)
        y = self.act(y)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        return y


class RepVGGOur(nn.Module):
    """Thin wrapper as in the official code: keys `<prefix>.block.*`."""

    def __init__(self, cin, cout, stride, groups=1, activation="silu"):
        super().__init__()
        self.block = RepVGGBlock(cin, cout, stride, groups, activation)

    def forward(self, x):
        return self.block(x)


class MultiBatchNorm2d(nn.Module):
    """Two independent BNs: b1 on the current stream, b2 on the previous features."""

    def __init__(self, c):
        super().__init__()
        self.b1 = nn.BatchNorm2d(c)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, pair):
        a, b = pair
        return self.b1(a), self.b2(b)


class Concat2d(nn.Module):
    """Interleaving concat: out[2k] = a[k], out[2k+1] = b[k] (spec 2.5 step 2)."""

    def forward(self, pair):
        a, b = pair
        n, c, h, w = a.shape
        return torch.stack((a, b), dim=2).reshape(n, 2 * c, h, w)


def fusion(c, cout, stride, activation):
    """Keys `<prefix>.0.b1/b2`, `<prefix>.2.block` (index 1 is the concat, no parameters)."""
    return nn.Sequential(
        MultiBatchNorm2d(c), Concat2d(), RepVGGOur(2 * c, cout, stride, 2, activation)
    )


class ConvBNAct(nn.Module):
    """R-CIFAR final layer: 1x1 conv (no bias) + BN + act (spec 3, assumed)."""

    def __init__(self, cin, cout, activation):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = make_activation(activation)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Head(nn.Module):
    def __init__(self, cin, classes):
        super().__init__()
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ParNet(nn.Module):
    """layout: "imagenet" (spec 2.7-2.11) or "cifar" (spec 3, R-CIFAR)."""

    def __init__(self, layout="imagenet", widths=(92, 192, 384, 1280), num_classes=1000,
                 activation="silu"):
        super().__init__()
        w0, w1, w2, wl = widths
        a = activation
        if layout == "imagenet":
            stem_w = min(64, w0)
            first = nn.Sequential(RepVGGOur(3, stem_w, 2, 1, a), RepVGGOur(stem_w, w0, 2, 1, a))
            counts = (4, 5, 5)
        elif layout == "cifar":
            first = nn.Sequential(
                RepVGGOur(3, w0, 1, 1, a), RepVGGOur(w0, w0, 1, 1, a), RepVGGOur(w0, w0, 1, 1, a)
            )
            counts = (3, 4, 4)
        else:
            raise ValueError(layout)
        self.inits = nn.ModuleList(
            [first, RepVGGOur(w0, w1, 2, 1, a), RepVGGOur(w1, w2, 2, 1, a)]
        )
        self.streams = nn.ModuleList(
            [
                nn.Sequential(*[RepVGGOur(w, w, 1, 1, a) for _ in range(n)])
                for w, n in zip((w0, w1, w2), counts)
            ]
        )
        self.downsamples_2 = nn.ModuleList([RepVGGOur(w0, w1, 2, 1, a), fusion(w1, w2, 2, a)])
        final = RepVGGOur(w2, wl, 2, 1, a) if layout == "imagenet" else ConvBNAct(w2, wl, a)
        self.combine = nn.Sequential(*fusion(w2, w2, 1, a), final)
        self.head = Head(wl, num_classes)

    def forward(self, img):
        x0 = self.inits[0](img)
        x1 = self.inits[1](x0)
        x2 = self.inits[2](x1)
        y0 = self.streams[0](x0)
        y1 = self.streams[1](x1)
        y2 = self.streams[2](x2)
        d0 = self.downsamples_2[0](y0)
        d1 = self.downsamples_2[1]((y1, d0))
        z = self.combine((y2, d1))
        return self.head(z)
