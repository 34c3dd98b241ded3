"""A ResNet-50 (batch 1, 224x224, batch norm folded into conv bias) built with the hal IR
builder and random weights: the program the llvm-cpu compile-time figure is measured on."""

from __future__ import annotations

import numpy as np

from hal_core.ir import Builder, ops


def build(seed: int = 0):
    g = np.random.default_rng(seed)

    def conv(x, cin, cout, k, stride=1, relu=True):
        w = (g.standard_normal((cout, cin, k, k)) * (2 / (cin * k * k)) ** 0.5).astype(np.float32)
        bias = (g.standard_normal(cout) * 0.01).astype(np.float32)
        y = ops.conv2d(x, w, bias, strides=stride, padding=k // 2)
        return y.relu() if relu else y

    def bottleneck(x, cin, mid, stride):
        out = conv(x, cin, mid, 1)
        out = conv(out, mid, mid, 3, stride)
        out = conv(out, mid, mid * 4, 1, relu=False)
        short = conv(x, cin, mid * 4, 1, stride, relu=False) if stride != 1 or cin != mid * 4 \
            else x
        return (out + short).relu()

    b = Builder()
    with b.function("main", [("x", (1, 3, 224, 224), "f32")]) as f:
        (x,) = f.args
        y = conv(x, 3, 64, 7, 2)
        y = ops.max_pool2d(y, 3, 2, 1)
        cin = 64
        for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(blocks):
                y = bottleneck(y, cin, mid, stride if i == 0 else 1)
                cin = mid * 4
        y = ops.reshape(ops.global_avg_pool2d(y), (1, 2048))
        fc = (g.standard_normal((2048, 1000)) * 0.01).astype(np.float32)
        f.ret((y @ fc).softmax(axis=1))
    return b.module()
