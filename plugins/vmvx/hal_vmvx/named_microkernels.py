"""Microkernels of the named kernels: matmul, conv2d (im2col + matmul), pooling (sliding
windows), arg-reduction, gather and softmax. Each handler writes rows ``[c0, c1)`` of its
kernel's tile axis; ``env[dst]`` is already sliced to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from hal_core.errors import ModuleFormatError
from hal_vmvx.bytecode import DTYPES, Instr, Value


def _bad(ins: Instr, what: str) -> ModuleFormatError:
    return ModuleFormatError(f"malformed vmvx-bytecode payload: instruction {ins.op!r}: {what}")


def _acc(code: int) -> np.dtype:
    if not 0 <= code < len(DTYPES):
        raise ModuleFormatError(f"malformed vmvx-bytecode payload: dtype code {code}")
    return np.dtype(DTYPES[code])


def _blas_dtype(acc: np.dtype) -> np.dtype:
    # numpy has no float16 BLAS; its float16 dot sums in float32 anyway, so do that with BLAS
    # and round once at the end.
    return np.dtype(np.float32) if acc == np.float16 else acc


def matmul(d: int, s: Sequence[int], p: Sequence[int]):
    (a, b), (ta, tb, acc) = s, p
    acc_dt = _acc(acc)
    mm_dt = _blas_dtype(acc_dt)

    def run(env, c0, c1):
        x, y = env[a], env[b]
        if ta:
            x = np.swapaxes(x, -1, -2)
        if tb:
            y = np.swapaxes(y, -1, -2)
        if x.dtype != mm_dt:
            x, y = x.astype(mm_dt), y.astype(mm_dt)
        if mm_dt == acc_dt:
            np.matmul(x, y, out=env[d])
        else:
            np.copyto(env[d], np.matmul(x, y), casting="unsafe")
    return run


def _check_4d(ins: Instr, values: Sequence[Value], idx: Sequence[int]) -> None:
    if any(len(values[i].shape) != 4 for i in idx):
        raise _bad(ins, "expects NCHW operands")


def _padded_rows(x: np.ndarray, r0: int, r1: int, stride: int, kh: int, dil: int, pt: int,
                 pl: int, width: int, fill, dtype: np.dtype) -> np.ndarray:
    """Input rows feeding output rows [r0, r1), as padded columns [0, width) (input column
    ``j`` at ``pl + j``; padding reads as ``fill``).

    ``width`` is the windows' reach, which can be less than ``pl + w`` (a stride or a window
    that never reaches the last input columns): columns past it are left out of the copy.
    """
    n, c, h, w = x.shape
    top = r0 * stride - pt
    bottom = (r1 - 1) * stride - pt + (kh - 1) * dil + 1
    if x.dtype == dtype and pl == 0 and width <= w and top >= 0 and bottom <= h:
        return x[:, :, top:bottom, :]  # no padding reaches these rows: read the input itself
    slab = np.full((n, c, bottom - top, width), fill, dtype=dtype)
    s0, s1 = max(top, 0), min(bottom, h)
    cols = max(0, min(w, width - pl))  # input columns some window reads
    if s1 > s0 and cols:
        slab[:, :, s0 - top:s1 - top, pl:pl + cols] = x[:, :, s0:s1, :cols]
    return slab


def conv2d(ins: Instr, d: int, s: Sequence[int], p: Sequence[int], values: Sequence[Value]):
    sh, sw, pt, pl, pb, pr, dh, dw, groups, acc = p
    _check_4d(ins, values, (s[0], s[1], d))
    if min(sh, sw, dh, dw, groups) < 1 or min(pt, pl, pb, pr) < 0:
        raise _bad(ins, f"parameters {tuple(p)}")
    mm_dt = _blas_dtype(_acc(acc))
    x_i, w_i = s[0], s[1]
    b_i = s[2] if len(s) == 3 else None
    o_, cg, kh, kw = values[w_i].shape
    if values[x_i].shape[1] != cg * groups or o_ % groups:
        raise _bad(ins, "channels do not split into groups")

    def run(env, c0, c1):
        x, w, out = env[x_i], env[w_i], env[d]
        n = x.shape[0]
        ow = out.shape[3]
        rows = c1 - c0
        width = (ow - 1) * sw + (kw - 1) * dw + 1  # padded columns the windows reach
        slab = _padded_rows(x, c0, c1, sh, kh, dh, pt, pl, width, 0, mm_dt)
        e = slab.strides
        win = as_strided(slab, (n, groups, cg, kh, kw, rows, ow),
                         (e[0], cg * e[1], e[1], dh * e[2], dw * e[3], sh * e[2], sw * e[3]),
                         writeable=False)
        # a view for a 1x1 stride-1 conv over whole rows; im2col's copy otherwise
        cols = win.reshape(n, groups, cg * kh * kw, rows * ow)
        wf = w.reshape(groups, o_ // groups, cg * kh * kw).astype(mm_dt, copy=False)
        o = out.strides
        if out.dtype == mm_dt and (rows == 1 or o[2] == ow * o[3]):
            # BLAS writes the output tile itself: (n, groups, o/groups, rows*ow) over it
            dst = as_strided(out, (n, groups, o_ // groups, rows * ow),
                             (o[0], o[1] * (o_ // groups), o[1], o[3]))
            np.matmul(wf, cols, out=dst)
        else:
            res = np.matmul(wf, cols)  # (n, groups, o/groups, rows*ow)
            np.copyto(out, res.reshape(n, o_, rows, ow), casting="unsafe")
        if b_i is not None:
            np.add(out, env[b_i].reshape(1, o_, 1, 1), out=out, casting="unsafe")
    return run


def pool2d(ins: Instr, d: int, s: Sequence[int], p: Sequence[int], values: Sequence[Value]):
    avg, kh, kw, sh, sw, pt, pl, pb, pr, incl = p
    _check_4d(ins, values, (s[0], d))
    if min(kh, kw, sh, sw) < 1 or min(pt, pl, pb, pr) < 0:
        raise _bad(ins, f"parameters {tuple(p)}")
    (x_i,) = s
    dt = np.dtype(values[x_i].dtype)
    h, w = values[x_i].shape[2:]
    oh, ow = values[d].shape[2:]

    def counts(n_out, stride, k, lo_pad, hi_pad, size):
        start = np.arange(n_out) * stride - lo_pad
        lo, hi = (-lo_pad, size + hi_pad) if incl else (0, size)
        return np.clip(start + k, lo, hi) - np.clip(start, lo, hi)

    if avg:
        sum_dt = np.dtype(np.float32) if dt == np.float16 else (
            dt if dt.kind == "f" else np.dtype(np.float64))
        divisor = np.outer(counts(oh, sh, kh, pt, pb, h),
                           counts(ow, sw, kw, pl, pr, w)).astype(sum_dt)
        # A window lying wholly in padding averages no element: NaN, as the reference's 0/0
        # and reduce_mean over an empty axis (0/NaN gives it without a warning).
        divisor[divisor == 0] = np.nan
        fill = 0
    elif dt.kind == "f":
        fill = -np.inf
    elif dt.kind == "b":
        fill = False
    else:
        fill = np.iinfo(dt).min

    def run(env, c0, c1):
        x, out = env[x_i], env[d]
        n, c = x.shape[:2]
        rows = c1 - c0
        width = (ow - 1) * sw + kw  # padded columns the windows reach
        slab = _padded_rows(x, c0, c1, sh, kh, 1, pt, pl, width, fill, dt)
        # One ufunc pass per window offset over whole strided planes: far faster than
        # reducing a 6-D window view whose innermost axes are tiny.
        acc = np.empty((n, c, rows, ow), sum_dt) if avg else out
        combine = np.add if avg else np.maximum
        for ky in range(kh):
            for kx in range(kw):
                plane = slab[:, :, ky:ky + sh * (rows - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]
                if ky == 0 and kx == 0:
                    np.copyto(acc, plane)
                else:
                    combine(acc, plane, out=acc)
        if avg:
            np.divide(acc, divisor[c0:c1], out=acc)
            np.copyto(out, acc, casting="unsafe")
    return run


def argreduce(ins: Instr, d: int, s: Sequence[int], p: Sequence[int], values: Sequence[Value]):
    (x_i,), (axis, is_min) = s, p
    if not 0 <= axis < len(values[x_i].shape):
        raise _bad(ins, f"axis {axis}")
    fn = np.argmin if is_min else np.argmax

    def run(env, c0, c1):
        out = env[d]
        np.copyto(out, fn(env[x_i], axis=axis).reshape(out.shape), casting="unsafe")
    return run


def gather(ins: Instr, d: int, s: Sequence[int], p: Sequence[int], values: Sequence[Value]):
    (data_i, idx_i), (axis,) = s, p
    if not 0 <= axis < len(values[data_i].shape):
        raise _bad(ins, f"axis {axis}")

    def run(env, c0, c1):
        data, out = env[data_i], env[d]
        n = data.shape[axis]
        idx = np.asarray(env[idx_i]).astype(np.int64)
        idx = np.where(idx < 0, idx + n, idx)
        res = np.take(data, idx, axis=axis, mode="clip")
        np.copyto(out, res.reshape(out.shape))
    return run


def softmax(ins: Instr, d: int, s: Sequence[int], p: Sequence[int], values: Sequence[Value]):
    (x_i,), (axis, log) = s, p
    if not 0 <= axis < len(values[x_i].shape):
        raise _bad(ins, f"axis {axis}")

    dt = np.dtype(values[d].dtype)
    # float16 is computed in float32 and rounded once; other types in place in the output,
    # so a call makes no temporaries of the tile's size (fresh ones cost page faults).
    calc = np.dtype(np.float32) if dt == np.float16 else dt

    def run(env, c0, c1):
        x, out = env[x_i], env[d]
        if x.size == 0:
            return
        work = out if calc == dt else np.empty(out.shape, calc)
        np.subtract(x, np.max(x, axis=axis, keepdims=True), out=work, dtype=calc)
        if log:
            total = np.sum(np.exp(work), axis=axis, keepdims=True)
            np.subtract(work, np.log(total), out=work)
        else:
            np.exp(work, out=work)
            np.divide(work, np.sum(work, axis=axis, keepdims=True), out=work)
        if work is not out:
            np.copyto(out, work, casting="unsafe")
    return run
