#!/usr/bin/env python3
"""gen.py: random, well-typed .nn models for differential testing (tests/difftest, docs/testing-differential.md).

    gen.py --seed S [--count N] --dir DIR

writes DIR/dS.nn ... d(S+N-1).nn: model number S+i depends on its seed S+i alone, so one failing model is
regenerated with `--seed SEED --count 1`. Python 3 standard library only.

Each model draws from every operator and layer of the language: elementwise functions and operators with
broadcasting (batched and unbatched operands, keepdims), reductions over axes (negative ones, the batch axis,
lists, none), matmul `@`, reshape/flatten/transpose/concat, softmax/log_softmax, argmax, dense, conv2d
(stride, same/valid padding), max/avg pooling, batchnorm, dropout, lstm, params with every initializer,
consts, defs and pipes, every loss, optimizer and metric, and freeze. The values stay in a sane range
(inputs in [-1, 1], small layers, tanh before exp) and away from kinks and ties that float and double would
resolve differently: max, maxpool and argmax see only values that are distinct by construction, log and
sqrt only positive ones, batchnorm never follows a bias (its gradient would be rounding noise, which Adam
turns into whole steps).

Every model carries its interface for the driver (difftest.c) in comment lines that start with `#%`:
    #% batch N                       the compiled maximum batch (also train(batch=N))
    #% input NAME f32|i32 COUNT [HI] per-sample element count; i32 inputs are drawn from [0, HI)
    #% target NAME f32|i32 COUNT [CLASSES]
    #% output NAME f32|i32 COUNT
    #% bn 1                          the model has batchnorm: train steps use batches of 3 and more
"""
import argparse
import os
import random

ACTS = ["none", "relu", "sigmoid", "tanh", "leaky_relu", "linear", "softmax"]
INITS_W = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
           "kaiming_uniform", "kaiming_uniform(a=2.23606797749979)", "uniform(-0.3, 0.3)", "normal(std=0.2)"]
INITS_B = ["zeros", "ones", "constant(0.1)", "uniform()", "normal(mean=0.1, std=0.05)", "0.2"]


def prod(xs):
    n = 1
    for x in xs:
        n *= x
    return n


class Val:
    """a value bound to a name: per-sample shape (the batch axis is not in dims), batched, dtype and the
    facts the generator keeps it safe with: distinct (no ties by construction), pos (bounded away from 0
    and positive), mag (a rough bound of |x|), biased (the last op added a trainable bias or shift)."""

    def __init__(self, name, dims, batched=True, dtype="f32", distinct=False, pos=False, mag=1.0, biased=False):
        self.name, self.dims, self.batched, self.dtype = name, tuple(dims), batched, dtype
        self.distinct, self.pos, self.mag, self.biased = distinct, pos, mag, biased

    def full(self):
        return (("B",) if self.batched else ()) + self.dims

    def rank(self):
        return len(self.dims) + (1 if self.batched else 0)


def fmt(x):
    s = "%.4g" % x
    return s


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.seed = seed
        self.name = "d%d" % seed
        self.lines = []
        self.top = []
        self.vals = []
        self.inputs = []
        self.targets = []
        self.outputs = []
        self.metrics = []
        self.n = 0
        self.params = []      # names of layers/params that can be frozen
        self.has_bn = False
        self.has_params = False
        self.defs = []
        self.dropout_live = False
        self.uid = 0
        self.rebind = True    # names may be rebound while the body is generated, not after

    # ---- helpers --------------------------------------------------------------------------------------------
    def fresh(self, prefix="v"):
        self.n += 1
        return "%s%d" % (prefix, self.n)

    def chance(self, p):
        return self.r.random() < p

    def pick(self, xs):
        return self.r.choice(xs)

    def emit(self, line):
        self.lines.append("    " + line)

    def bind(self, expr, dims, **kw):
        name = self.fresh()
        if self.rebind and self.vals and self.chance(0.08):
            # rebind an existing name (an input too) of the same shape: the old value is no longer reachable
            # (a Val still held by the op being built keeps a valid shape)
            old = self.pick(self.vals)
            if (old.name.startswith("v") or old.name.startswith("x")) and old.dims == tuple(dims) and \
                    old.batched == kw.get("batched", True) and old.dtype == "f32":
                self.vals.remove(old)
                name = old.name
        self.emit("%s = %s" % (name, expr))
        v = Val(name, dims, **kw)
        self.vals.append(v)
        return v

    def f32_vals(self, pred=lambda v: True):
        return [v for v in self.vals if v.dtype == "f32" and pred(v)]

    def small_dims(self, rank, lo=1, hi=5):
        return tuple(self.r.randint(lo, hi) for _ in range(rank))

    def const_list(self, dims):
        if not dims:
            return fmt(self.r.uniform(-1, 1))
        if len(dims) == 1:
            return "[" + ", ".join(fmt(self.r.uniform(-1, 1)) for _ in range(dims[0])) + "]"
        return "[" + ", ".join(self.const_list(dims[1:]) for _ in range(dims[0])) + "]"

    def param(self, dims, init=None, positive=False):
        name = self.fresh("p")
        if init is None:
            choices = INITS_W + INITS_B + ["list"] if not positive else ["ones", "constant(0.7)", "0.5"]
            init = self.pick(choices)
            if init == "list":
                init = self.const_list(dims) if prod(dims) <= 24 else "glorot_uniform"
        self.emit("param %s: f32[%s] = %s" % (name, ", ".join(map(str, dims)), init))
        self.params.append(name)
        self.has_params = True
        return name

    def tame(self, v):
        """v itself, or tanh(v) when its magnitude grew"""
        if v.mag <= 4:
            return v
        return self.bind("tanh(%s)" % v.name, v.dims, batched=v.batched, distinct=v.distinct, mag=1.0)

    # ---- shapes that broadcast with v ------------------------------------------------------------------------
    def operand_for(self, v):
        """(expr, distinct, mag, biased) of a second operand that broadcasts with v without changing its shape"""
        k = self.r.randint(0, 6)
        dims = v.dims
        if k == 0:
            return fmt(self.r.uniform(0.2, 1.5)), False, 1.5, True
        if k == 1 and dims:
            tail = dims[-self.r.randint(1, len(dims)):]
            return self.const_list(tail), False, 1.0, True
        if k == 2 and dims:
            tail = list(dims[-self.r.randint(1, len(dims)):])
            for i in range(len(tail)):
                if self.chance(0.3):
                    tail[i] = 1
            return self.param(tail), False, 1.5, True
        if k == 3 and v.batched and dims:
            # the same shape with reduced axes kept: x - mean(x, axis, keepdims=true)
            axes = sorted(self.r.sample(range(1, len(dims) + 1), self.r.randint(1, len(dims))))
            op = self.pick(["mean", "sum", "max"] if v.distinct else ["mean", "sum"])
            ax = self.axes_text(axes, len(dims) + 1)
            return "%s(%s, axis=%s, keepdims=true)" % (op, v.name, ax), False, v.mag * (4 if op == "sum" else 1), False
        others = [w for w in self.f32_vals() if w is not v and w.batched == v.batched and w.dims == v.dims]
        if others:
            w = self.pick(others)
            return w.name, w.distinct, w.mag, False
        if v.batched and dims:
            # an unbatched statistic over the batch axis: mixes the samples
            return "mean(%s, axis=0)" % v.name, False, v.mag, False
        return fmt(self.r.uniform(0.5, 2)), False, 2, True

    def axes_text(self, axes, rank):
        """axes as an int or list, some written negative"""
        out = [a - rank if self.chance(0.4) else a for a in axes]
        if len(out) == 1 and self.chance(0.6):
            return str(out[0])
        return "[" + ", ".join(map(str, out)) + "]"

    # ---- ops -------------------------------------------------------------------------------------------------
    def op_unary(self, v):
        v = self.tame(v)
        k = self.pick(["relu", "leaky_relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "square", "clip",
                       "neg", "pow", "softplusish"])
        x, d, b = v.name, v.dims, v.batched
        if k == "relu":
            return self.bind("relu(%s)" % x, d, batched=b, mag=v.mag)
        if k == "leaky_relu":
            return self.bind("leaky_relu(%s, alpha=%s)" % (x, fmt(self.r.uniform(0.01, 0.3))), d, batched=b,
                             distinct=v.distinct, mag=v.mag)
        if k in ("sigmoid", "tanh"):
            return self.bind("%s(%s)" % (k, x), d, batched=b, distinct=v.distinct, mag=1.0, pos=(k == "sigmoid"))
        if k == "exp":
            return self.bind("exp(%s)" % x, d, batched=b, distinct=v.distinct, pos=True, mag=min(60.0, 2.8 ** v.mag))
        if k == "log":
            if v.pos:
                return self.bind("log(%s)" % x, d, batched=b, distinct=v.distinct, mag=4)
            return self.bind("log(square(%s) + %s)" % (x, fmt(self.r.uniform(0.3, 1.5))), d, batched=b, mag=3)
        if k == "sqrt":
            if v.pos:
                return self.bind("sqrt(%s)" % x, d, batched=b, distinct=v.distinct, pos=True, mag=v.mag ** 0.5 + 1)
            return self.bind("sqrt(square(%s) + 0.5)" % x, d, batched=b, pos=True, mag=v.mag + 1)
        if k == "abs":
            return self.bind("abs(%s)" % x, d, batched=b, mag=v.mag)
        if k == "square":
            return self.bind("square(%s)" % x, d, batched=b, mag=v.mag * v.mag)
        if k == "clip":
            lo = self.r.uniform(-1, 0)
            return self.bind("clip(%s, %s, %s)" % (x, fmt(lo), fmt(lo + self.r.uniform(0.3, 2))), d, batched=b, mag=2)
        if k == "neg":
            return self.bind("-%s" % x, d, batched=b, distinct=v.distinct, mag=v.mag)
        if k == "pow":
            if v.pos:
                e = self.pick(["0.5", "-1", "1.5", "2", "-0.5"])
                return self.bind("%s ** %s" % (x, e), d, batched=b, distinct=v.distinct, pos=True, mag=3 * v.mag + 4)
            e = self.pick(["2", "3"])
            return self.bind("%s ** %s" % (x, e), d, batched=b, distinct=v.distinct and e == "3", mag=v.mag ** int(e))
        return self.bind("log(exp(%s) + 1)" % x, d, batched=b, distinct=v.distinct, pos=True, mag=v.mag + 1)

    def op_binary(self, v):
        v = self.tame(v)
        e, d2, mag2, biased = self.operand_for(v)
        k = self.pick(["+", "-", "*", "/", "maximum", "minimum", "chain"])
        x = v.name
        if k in ("+", "-"):
            if self.chance(0.5):
                expr = "%s %s %s" % (x, k, e)
            else:
                expr = "%s %s %s" % (e, k, x) if k == "+" else "%s - %s" % (x, e)
            return self.bind(expr, v.dims, batched=v.batched, distinct=v.distinct, mag=v.mag + mag2, biased=biased)
        if k == "*":
            return self.bind("%s * %s" % (x, e), v.dims, batched=v.batched, mag=v.mag * mag2)
        if k == "/":
            return self.bind("%s / (square(%s) + %s)" % (x, e, fmt(self.r.uniform(0.5, 2))), v.dims,
                             batched=v.batched, mag=2 * v.mag)
        if k in ("maximum", "minimum"):
            return self.bind("%s(%s, %s)" % (k, x, e), v.dims, batched=v.batched, mag=max(v.mag, mag2))
        # a fusion-friendly chain of elementwise ops in one expression
        c1, c2 = fmt(self.r.uniform(0.2, 1)), fmt(self.r.uniform(0.1, 1))
        expr = self.pick([
            "(%s - %s) * %s + tanh(%s) * %s" % (x, e, c1, x, c2),
            "sigmoid(%s * %s) * %s - %s" % (x, c1, x, c2),
            "%s * %s + %s * (%s - %s) ** 2" % (x, c1, c2, x, e),
            "exp(-square(%s) * %s) + %s" % (x, c1, e),
        ])
        return self.bind(expr, v.dims, batched=v.batched, mag=v.mag * 2 + mag2 + 2)

    def op_reduce(self, v):
        if not v.dims and v.batched is False:
            return None
        rank = v.rank()
        op = self.pick(["sum", "mean", "max"] if v.distinct else ["sum", "mean"])
        keep = self.chance(0.3)
        if self.chance(0.08):
            return self.bind("%s(%s)" % (op, v.name), (), batched=False, mag=v.mag * 4, distinct=False)
        if self.chance(0.04):  # an empty axis list is the identity; a scalar transposes with []
            if self.chance(0.5):
                return self.bind("%s(%s, axis=[])" % (op, v.name), v.dims, batched=v.batched, mag=v.mag, distinct=v.distinct)
            return self.bind("transpose(mean(%s), [])" % v.name, (), batched=False, mag=v.mag)
        lo = 1 if v.batched else 0
        if rank - lo < 1:
            return None
        if v.batched and self.chance(0.1):
            axes = [0] + ([self.r.randint(1, rank - 1)] if rank > 1 and self.chance(0.5) else [])
        else:
            axes = sorted(self.r.sample(range(lo, rank), self.r.randint(1, min(2, rank - lo))))
        batched = v.batched and 0 not in axes
        full = list(v.full())
        if keep:
            for a in axes:
                full[a] = 1
            dims = tuple(full[1:] if batched else (full if not v.batched else full[1:]))
            if v.batched and not batched:
                dims = tuple(full)  # the batch axis kept as extent 1 becomes an ordinary axis
        else:
            dims = tuple(x for i, x in enumerate(full) if i not in axes and x != "B")
        mag = v.mag * (prod(v.full()[a] for a in axes if a != 0) if op == "sum" else 1)
        if 0 in axes and op == "sum":
            mag *= 8
        dims = tuple(1 if x == "B" else x for x in dims)
        return self.bind("%s(%s, axis=%s%s)" % (op, v.name, self.axes_text(axes, rank), ", keepdims=true" if keep else ""),
                         dims, batched=batched, distinct=(op == "max" and not keep and v.distinct and False), mag=min(mag, 50))

    def op_dense(self, v, units=None, act=None):
        if not v.dims:
            if not v.batched:
                return None
            v = self.bind("reshape(%s, [1])" % v.name, (1,), batched=True, distinct=v.distinct, mag=v.mag)
        v = self.tame(v)
        fixed = units is not None
        units = units or (self.r.randint(1, 6) if self.chance(0.8) else self.r.randint(16, 24))
        act = act or self.pick(ACTS)
        if act in ("relu", "softmax") and self.chance(0.5):
            act = "tanh"
        args = [v.name, str(units)]
        if not fixed and getattr(self, "width", None) and self.chance(0.3):
            units = self.width[1] * 2
            args[1] = "2 * %s" % self.width[0]
        elif self.chance(0.15):
            args[1] = "units=%s" % args[1]
        if act != "none" or self.chance(0.3):
            args.append("activation=%s" % act)
        use_bias = self.chance(0.85)
        if not use_bias:
            args.append("use_bias=false")
        if self.chance(0.3):
            args.append("kernel_init=%s" % self.pick(INITS_W))
        if use_bias and self.chance(0.2):
            args.append("bias_init=%s" % self.pick(INITS_B))
        name = self.fresh()
        if self.chance(0.2):
            args.append('name="L%s"' % name)
        if self.chance(0.3):
            self.emit("%s = %s |> dense(%s)" % (name, args[0], ", ".join(args[1:])))
        else:
            self.emit("%s = dense(%s)" % (name, ", ".join(args)))
        self.params.append(name if "name=" not in args[-1] else "L" + name)
        self.has_params = True
        out = Val(name, v.dims[:-1] + (units,), batched=v.batched, distinct=act in ("none", "linear", "tanh", "sigmoid", "leaky_relu") and v.distinct,
                  mag=1.0 if act in ("sigmoid", "tanh", "softmax") else 1.5 * v.mag + 1, pos=act in ("sigmoid", "softmax"),
                  biased=use_bias and act in ("none", "linear"))
        if act == "softmax" or units == 1:
            out.distinct = out.distinct and act != "softmax"
        self.vals.append(out)
        return out

    def to_image(self, v):
        """a rank-4 [B,H,W,C] view of a batched value"""
        if len(v.dims) == 3:
            return v
        n = prod(v.dims)
        for h, w in ((2, 2), (3, 3), (4, 4), (2, 3), (3, 2), (5, 5), (6, 6)):
            if n % (h * w) == 0 and n // (h * w) <= 8:
                c = n // (h * w)
                return self.bind("reshape(%s, [%d, %d, %d])" % (v.name, h, w, c), (h, w, c), distinct=v.distinct,
                                 mag=v.mag, biased=v.biased)
        d = self.op_dense(self.bind("flatten(%s)" % v.name, (n,), distinct=v.distinct, mag=v.mag), units=self.pick([16, 18, 25]), act="tanh")
        h = {16: 4, 18: 3, 25: 5}[d.dims[0]]
        return self.bind("reshape(%s, [%d, %d, -1])" % (d.name, h, h), (h, h, d.dims[0] // (h * h)), distinct=d.distinct, mag=1)

    def out_size(self, n, k, s, pad):
        if pad == "same":
            return (n + s - 1) // s
        return (n - k) // s + 1

    def op_conv(self, v):
        if not v.batched:
            return None
        v = self.tame(self.to_image(v))
        h, w, c = v.dims
        kh, kw = self.r.randint(1, min(3, h)), self.r.randint(1, min(3, w))
        sh, sw = self.r.randint(1, 2), self.r.randint(1, 2)
        pad = self.pick(["same", "valid"])
        f = self.r.randint(1, 5) if self.chance(0.75) else self.r.randint(16, 20)
        act = self.pick(["none", "tanh", "relu", "sigmoid"])
        kern = str(kh) if kh == kw and self.chance(0.5) else "[%d, %d]" % (kh, kw)
        stride = "" if sh == sw == 1 and self.chance(0.5) else (", stride=%d" % sh if sh == sw else ", stride=[%d, %d]" % (sh, sw))
        padt = "" if pad == "valid" and self.chance(0.5) else ", padding=%s" % (pad if self.chance(0.5) else '"%s"' % pad)
        use_bias = self.chance(0.8)
        name = self.fresh()
        extra = "" if use_bias else ", use_bias=false"
        if self.chance(0.2):
            extra += ", kernel_init=%s" % self.pick(INITS_W)
        if self.chance(0.2):
            self.emit("%s = %s |> conv2d(filters=%d, kernel=%s%s%s, activation=%s%s)" % (name, v.name, f, kern, stride, padt, act, extra))
        else:
            self.emit("%s = conv2d(%s, %d, %s%s%s, activation=%s%s)" % (name, v.name, f, kern, stride, padt, act, extra))
        self.params.append(name)
        self.has_params = True
        dims = (self.out_size(h, kh, sh, pad), self.out_size(w, kw, sw, pad), f)
        out = Val(name, dims, distinct=v.distinct and act != "relu" and pad == "valid", mag=1.0 if act in ("tanh", "sigmoid") else 2 * v.mag + 1,
                  biased=use_bias and act == "none")
        self.vals.append(out)
        return out

    def op_pool(self, v):
        if not v.batched:
            return None
        v = self.to_image(v)
        h, w, c = v.dims
        op = "maxpool2d" if v.distinct and self.chance(0.6) else "avgpool2d"
        ph, pw = self.r.randint(1, min(3, h)), self.r.randint(1, min(3, w))
        pad = self.pick(["same", "valid"])
        if op == "maxpool2d" and pad == "same":
            pad = "valid" if self.chance(0.5) else "same"
        args = [v.name]
        if ph == pw and self.chance(0.5):
            args.append(str(ph) if self.chance(0.5) else "pool=%d" % ph)
            sh = sw = ph
        else:
            args.append("pool=[%d, %d]" % (ph, pw))
            sh, sw = ph, pw
        if self.chance(0.5):
            sh, sw = self.r.randint(1, 2), self.r.randint(1, 2)
            args.append("stride=[%d, %d]" % (sh, sw))
        if pad == "same" or self.chance(0.3):
            args.append("padding=%s" % pad)
        dims = (self.out_size(h, ph, sh, pad), self.out_size(w, pw, sw, pad), c)
        return self.bind("%s(%s)" % (op, ", ".join(args)), dims, distinct=False, mag=v.mag)

    def op_shape(self, v):
        k = self.pick(["flatten", "reshape", "transpose", "concat", "concat", "matmul", "matmul"])
        if k == "flatten" and v.batched and len(v.dims) >= 1:
            return self.bind("flatten(%s)" % v.name if self.chance(0.6) else "%s |> flatten()" % v.name,
                             (prod(v.dims),), distinct=v.distinct, mag=v.mag, biased=v.biased)
        if k == "reshape" and v.batched and prod(v.dims) == 1 and self.chance(0.5):
            return self.bind("reshape(%s, [])" % v.name, (), mag=v.mag, distinct=v.distinct)
        if k == "reshape" and v.dims:
            n = prod(v.dims)
            divs = [d for d in range(1, n + 1) if n % d == 0]
            a = self.pick(divs)
            rest = n // a
            b = self.pick([d for d in range(1, rest + 1) if rest % d == 0])
            dims = (a, b, rest // b) if self.chance(0.5) else (a, rest)
            shown = list(dims)
            if self.chance(0.3):
                shown[self.r.randrange(len(shown))] = -1
            if not v.batched and self.chance(0.5):
                return None
            return self.bind("reshape(%s, [%s])" % (v.name, ", ".join(map(str, shown))), dims, batched=v.batched,
                             distinct=v.distinct, mag=v.mag, biased=v.biased)
        if k == "transpose" and len(v.dims) >= 2:
            lo = 1 if v.batched else 0
            perm = list(range(lo, v.rank()))
            while perm == sorted(perm):
                self.r.shuffle(perm)
            dims = tuple(v.full()[p] for p in perm)
            full = ([0] if v.batched else []) + perm
            if not v.batched and self.chance(0.4):
                return self.bind("transpose(%s)" % v.name, tuple(reversed(v.dims)), batched=False, mag=v.mag)
            return self.bind("transpose(%s, [%s])" % (v.name, ", ".join(map(str, full))), dims, batched=v.batched,
                             distinct=v.distinct, mag=v.mag, biased=v.biased)
        if k == "concat" and v.dims and v.batched:
            axis = self.r.randint(1, len(v.dims))
            parts = [v]
            for _ in range(self.r.randint(1, 2)):
                cands = [w for w in self.f32_vals() if w.batched and len(w.dims) == len(v.dims) and
                         all(w.dims[i] == v.dims[i] for i in range(len(v.dims)) if i != axis - 1)]
                if cands and self.chance(0.6):
                    parts.append(self.pick(cands))
                else:
                    parts.append(self.op_unary(v))
            ax = axis - (len(v.dims) + 1) if self.chance(0.5) else axis
            names = ", ".join(p.name for p in parts)
            expr = "concat([%s], axis=%d)" % (names, ax) if self.chance(0.5) else "concat(%s, axis=%d)" % (names, ax)
            if ax == -1 and self.chance(0.5):
                expr = expr.replace(", axis=-1", "")
            dims = list(v.dims)
            dims[axis - 1] = sum(p.dims[axis - 1] for p in parts)
            return self.bind(expr, dims, mag=max(p.mag for p in parts))
        if k == "matmul" and v.dims:
            v = self.tame(v)
            kdim = v.dims[-1]
            n = self.r.randint(1, 6)
            j = self.r.randint(0, 3)
            if j == 0:
                if self.chance(0.3):  # a transposed parameter
                    w = "transpose(%s)" % self.param((n, kdim), init=self.pick(INITS_W))
                else:
                    w = self.param((kdim, n), init=self.pick(INITS_W))
                return self.bind("%s @ %s" % (v.name, w), v.dims[:-1] + (n,),
                                 batched=v.batched, mag=1.5 * v.mag + 1, distinct=v.distinct)
            if j == 1:
                return self.bind("%s @ %s" % (v.name, self.const_list((kdim,))), v.dims[:-1], batched=v.batched, mag=v.mag * kdim)
            if j == 2 and v.batched and len(v.dims) >= 2:
                # a batched product: v [B,..,M,K] @ transpose(w) where w [B,..,N,K]
                others = [w for w in self.f32_vals() if w.batched and len(w.dims) == len(v.dims) and w.dims[-1] == kdim and
                          w.dims[:-2] == v.dims[:-2]]
                w = self.pick(others) if others else v
                perm = list(range(len(v.dims) + 1))
                perm[-1], perm[-2] = perm[-2], perm[-1]
                return self.bind("%s @ transpose(%s, [%s])" % (v.name, w.name, ", ".join(map(str, perm))),
                                 v.dims[:-1] + (w.dims[-2],), mag=v.mag * w.mag * kdim)
            if len(v.dims) >= 2 or not v.batched:
                m = self.r.randint(1, 4)
                rows = v.dims[-2] if len(v.dims) >= 2 else None
                if rows is None:
                    return None
                p = self.param((m, rows), init=self.pick(INITS_W))
                return self.bind("%s @ %s" % (p, v.name), v.dims[:-2] + (m, v.dims[-1]), batched=v.batched,
                                 mag=2 * v.mag + 1)
        return None

    def op_softmax(self, v):
        if not v.dims:
            return None
        v = self.tame(v)
        axis = self.r.randint(1, len(v.dims)) if v.batched else self.r.randint(0, len(v.dims) - 1)
        shown = axis - v.rank() if self.chance(0.5) else axis
        op = self.pick(["softmax", "log_softmax"])
        arg = "" if shown == -1 and self.chance(0.5) else ", axis=%d" % shown
        return self.bind("%s(%s%s)" % (op, v.name, arg), v.dims, batched=v.batched, mag=1 if op == "softmax" else 4,
                         pos=op == "softmax")

    def op_batchnorm(self, v):
        if not v.batched or not v.dims or v.biased:
            return None
        self.has_bn = True
        args = [v.name]
        if self.chance(0.4):
            args.append("momentum=%s" % fmt(self.r.uniform(0.5, 0.99)))
        if self.chance(0.3):
            args.append("epsilon=%s" % self.pick(["0.01", "1e-3", "0.1"]))
        name = self.fresh()
        self.emit("%s = batchnorm(%s)" % (name, ", ".join(args)))
        self.params.append(name)
        self.has_params = True
        out = Val(name, v.dims, distinct=v.distinct, mag=4, biased=True)
        self.vals.append(out)
        return out

    def op_dropout(self, v):
        rate = "0" if self.chance(0.5) else self.pick(["0.1", "0.25", "0.5"])
        if rate != "0":
            self.dropout_live = True
        return self.bind("dropout(%s, %s)" % (v.name, rate) if self.chance(0.5) else "%s |> dropout(rate=%s)" % (v.name, rate),
                         v.dims, batched=v.batched, mag=v.mag * 2, biased=v.biased and rate == "0")

    def op_lstm(self, v):
        if not v.batched:
            return None
        v = self.tame(v)
        if len(v.dims) != 2:
            n = prod(v.dims)
            t = self.pick([d for d in (2, 3, 4, 1) if n % d == 0])
            v = self.bind("reshape(%s, [%d, %d])" % (v.name, t, n // t), (t, n // t), mag=v.mag)
        u = self.r.randint(1, 5)
        seq = self.chance(0.4)
        name = self.fresh()
        self.emit("%s = lstm(%s, %d%s)" % (name, v.name, u, ", return_sequences=true" if seq else ""))
        self.params.append(name)
        self.has_params = True
        out = Val(name, (v.dims[0], u) if seq else (u,), mag=1.0)
        self.vals.append(out)
        return out

    def op_def(self, v):
        if not self.defs or not v.batched or not v.dims:
            return None
        dname, kind = self.pick(self.defs)
        v = self.tame(v)
        if kind == "dense":
            u = self.r.randint(1, 5)
            extra = ", act=%s" % self.pick(["tanh", "sigmoid", "none"]) if self.chance(0.5) else ""
            name = self.fresh()
            if self.chance(0.5):
                self.emit("%s = %s |> %s(%d%s)" % (name, v.name, dname, u, extra))
            else:
                named = self.chance(0.3)
                self.emit("%s = %s(%s, %d%s%s)" % (name, dname, v.name, u, extra, ', name="c%s"' % name if named else ""))
                if named:
                    name = "c" + name
            self.params.append(name)
            self.has_params = True
            out = Val(self.lines[-1].split()[0], v.dims[:-1] + (u,), mag=2.0)
            self.vals.append(out)
            return out
        return self.bind("%s(%s)" % (dname, v.name), v.dims, mag=v.mag * 2 + 1)

    def make_defs(self):
        for i in range(self.r.randint(0, 2)):
            if self.chance(0.6):
                name = "blk%d" % i
                self.top += ["def %s(x, u, act=tanh, s=0.5) {" % name,
                             "    d = dense(x, u, activation=act)",
                             "    param g: f32[u] = ones" if self.chance(0.5) else "    g = s",
                             "    return d * g + s" if self.chance(0.5) else "    return d * g",
                             "}"]
                self.defs.append((name, "dense"))
            else:
                name = "ew%d" % i
                c = fmt(self.r.uniform(0.2, 0.9))
                inner = [d for d, kind in self.defs if kind == "ew"]
                self.top += ["def %s(x, k=%s) {" % (name, c),
                             "    y = tanh(%s) * k" % ("%s(x)" % inner[0] if inner and self.chance(0.7) else "x"),
                             "    return y + x * (1 - k)" if self.chance(0.5) else "    return sigmoid(y) - 0.5 + x",
                             "}"]
                self.defs.append((name, "ew"))

    # ---- the model -------------------------------------------------------------------------------------------
    def make_inputs(self):
        kinds = ["vec", "vec", "mat", "img", "seq", "t3"]
        for i in range(self.r.randint(1, 3)):
            k = self.pick(kinds)
            name = "x%d" % i if self.chance(0.7) else "in_%d" % i
            if k == "vec":
                dims = (self.r.randint(1, 8),)
            elif k == "mat":
                dims = self.small_dims(2, 1, 5)
            elif k == "img":
                dims = (self.r.randint(3, 7), self.r.randint(3, 7), self.r.randint(1, 3))
            elif k == "seq":
                dims = (self.r.randint(1, 5), self.r.randint(1, 4))
            else:
                dims = self.small_dims(3, 1, 4)
            self.inputs.append((name, "f32", dims, None))
            self.vals.append(Val(name, dims, distinct=True, mag=1.0))
        if self.chance(0.15):
            # an i32 input, used as f32 (converted)
            d = (self.r.randint(1, 4),)
            self.inputs.append(("ix", "i32", d, 4))
            if self.chance(0.5):
                v = self.bind("ix * 0.25 + %s" % self.const_list(d), d, mag=2, biased=True)
            else:
                v = self.bind("maximum(ix, 1) - ix / 4 + %s" % self.const_list(d), d, mag=4, biased=True)

    def step(self):
        live = self.f32_vals()
        v = self.pick(live[-4:] if self.chance(0.7) else live)
        ops = [(self.op_unary, 14), (self.op_binary, 14), (self.op_reduce, 6), (self.op_dense, 10), (self.op_conv, 4),
               (self.op_pool, 3), (self.op_shape, 10), (self.op_softmax, 3), (self.op_batchnorm, 2),
               (self.op_dropout, 2), (self.op_lstm, 2), (self.op_def, 3)]
        total = sum(w for _, w in ops)
        x = self.r.uniform(0, total)
        for f, w in ops:
            x -= w
            if x <= 0:
                return f(v)
        return None

    def head_of(self, v):
        """a batched f32 value of at least one per-sample axis, from v"""
        if not v.batched:
            base = [w for w in self.f32_vals() if w.batched]
            v = self.pick(base[-3:])
        if not v.dims:
            v = self.bind("reshape(%s, [1])" % v.name, (1,), mag=v.mag)
        return v

    def make_loss(self):
        batched = [w for w in self.f32_vals() if w.batched]
        v = self.head_of(batched[-1])
        flat = v if len(v.dims) == 1 or self.chance(0.3) else self.bind("flatten(%s)" % v.name, (prod(v.dims),), mag=v.mag,
                                                                        distinct=v.distinct)
        kind = self.pick(["mse", "mae", "bce", "cce", "scce", "scce", "custom"])
        terms = []
        if kind in ("mse", "mae"):
            p = self.op_dense(flat, act=self.pick(["none", "tanh"])) if self.chance(0.6) or not self.has_params else flat
            t = self.target("f32", p.dims)
            terms.append("%s(%s, %s)" % (kind, p.name, t))
            out = p
        elif kind == "bce":
            logits = self.chance(0.5)
            p = self.op_dense(flat, units=self.r.randint(1, 3), act="none" if logits else "sigmoid")
            t = self.target("f32", p.dims)
            terms.append("binary_crossentropy(%s, %s%s)" % (p.name, t, ", from_logits=true" if logits else ""))
            out = p
        elif kind == "cce":
            logits = self.chance(0.5)
            p = self.op_dense(flat, units=self.r.randint(2, 5), act="none" if logits else "softmax")
            t = self.target("f32", p.dims)
            terms.append("categorical_crossentropy(%s, %s%s)" % (p.name, t, ", from_logits=true" if logits else ""))
            out = p
        elif kind == "scce":
            logits = self.chance(0.6)
            # sometimes over a sequence: p [B,T,C], t [B,T]
            if len(v.dims) == 2 and self.chance(0.5):
                src = v
            else:
                src = flat
            c = self.r.randint(2, 5)
            p = self.op_dense(src, units=c, act="none" if logits else "softmax")
            tdims = p.dims[:-1] + ((1,) if not p.dims[:-1] and self.chance(0.3) else ())
            t = self.target("i32", tdims, classes=c)
            terms.append("sparse_categorical_crossentropy(%s, %s%s)" % (p.name, t, ", from_logits=true" if logits else ""))
            out = p
        else:
            p = self.op_dense(flat, act="none")
            t = self.target("f32", p.dims)
            terms.append("mean(square(%s - %s))" % (p.name, t))
            out = p
        if self.chance(0.25):
            w = self.pick(self.f32_vals())
            terms.append("%s * mean(square(%s))" % (fmt(self.r.uniform(0.01, 0.1)), self.tame(w).name))
        self.emit("loss " + " + ".join(terms))
        return out, kind

    def target(self, dtype, dims, classes=None):
        name = "t%d" % len(self.targets)
        self.targets.append((name, dtype, tuple(dims), classes))
        return name

    def make_metrics(self, out, kind):
        for i in range(self.r.randint(0, 3)):
            k = self.pick(["acc", "mse", "mae", "spread"])
            name = "m%d" % i
            if k == "acc" and self.targets:
                tname, dtype, tdims, classes = self.targets[-1]
                if dtype == "i32" or (kind in ("bce",) and out.dims[-1] == 1 and out.pos) or kind == "cce":
                    self.emit("metric %s = accuracy(%s, %s)" % (name, out.name, tname))
                    continue
                k = "spread"
            if k in ("mse", "mae") and self.targets and self.targets[-1][1] == "f32" and self.targets[-1][2] == out.dims:
                self.emit("metric %s = %s(%s, %s)" % (name, k, out.name, self.targets[-1][0]))
                continue
            w = self.pick(self.f32_vals())
            self.emit("metric %s = mean(abs(%s))" % (name, w.name) if self.chance(0.5) else
                      "metric %s = mean(%s)" % (name, w.name))

    def make_outputs(self, out):
        cands = [w for w in self.vals if w.batched and w.dtype == "f32"]
        chosen = [out] if self.chance(0.7) else []
        for _ in range(self.r.randint(0, 2)):
            w = self.pick(cands)
            if w not in chosen:
                chosen.append(w)
        if not chosen:
            chosen.append(self.pick(cands))
        k = 0
        for w in chosen:
            if self.chance(0.5):
                self.emit("output %s" % w.name)
                self.outputs.append((w.name, "f32", w.dims))
            else:
                name = "o%d" % k
                k += 1
                self.emit("output %s = %s" % (name, w.name))
                self.outputs.append((name, "f32", w.dims))
        dist = [w for w in self.vals if w.batched and w.dtype == "f32" and w.distinct and w.dims and w.mag < 20]
        if dist and self.chance(0.2):
            w = self.pick(dist)
            axis = self.r.randint(1, len(w.dims))
            dims = tuple(d for i, d in enumerate(w.dims) if i != axis - 1)
            self.emit("output am = argmax(%s%s)" % (w.name, "" if axis == len(w.dims) and self.chance(0.5) else ", axis=%d" % axis))
            self.outputs.append(("am", "i32", dims))

    def make_optimizer(self):
        k = self.pick(["sgd", "sgd", "adam", "adamw", "rmsprop"])
        if self.has_bn and self.chance(0.7):
            k = "sgd"  # batchnorm makes gradients that are zero but for rounding, which adam and rmsprop amplify
        args = []
        if k == "sgd":
            args.append("lr=%s" % self.pick(["0.05", "0.1", "0.01"]) if self.chance(0.7) else "learning_rate=0.05")
            if self.chance(0.5):
                args.append("momentum=%s" % self.pick(["0.5", "0.9"]))
                if self.chance(0.4):
                    args.append("nesterov=true")
            if self.chance(0.3):
                args.append("weight_decay=%s" % self.pick(["0.01", "0.001"]))
        else:
            if self.chance(0.7):
                args.append("lr=%s" % self.pick(["0.01", "0.005", "0.001"]))
            if k in ("adam", "adamw") and self.chance(0.3):
                args.append("beta1=0.8")
            if k in ("adam", "adamw") and self.chance(0.3):
                args.append("beta2=0.99")
            if k == "adamw" and self.chance(0.5):
                args.append("weight_decay=0.05")
            if k == "rmsprop" and self.chance(0.4):
                args.append("rho=0.8")
            if self.chance(0.2):
                args.append("epsilon=1e-5")
        self.emit("optimizer %s(%s)" % (k, ", ".join(args)))

    def generate(self):
        self.make_defs()
        self.width = None
        if self.chance(0.3):
            self.width = ("width%d" % (self.seed % 7), self.r.randint(2, 5))
            self.top.append("const %s = %d" % self.width)
        self.make_inputs()
        for _ in range(self.r.randint(3, 14)):
            try_ = self.step()
            if try_ is None:
                self.step()
        if not any(w.batched for w in self.f32_vals()):
            self.op_dense(self.vals[0])
        self.rebind = False
        out, kind = self.make_loss()
        self.make_outputs(out)
        self.make_metrics(out, kind)
        if self.chance(0.15) and len(self.params) > 1:
            self.emit("freeze %s" % ", ".join('"%s"' % p if self.chance(0.3) else p for p in self.params[:1]))
        self.make_optimizer()
        self.batch = self.r.choice([4, 5, 8]) if self.chance(0.8) else self.r.randint(3, 17)
        self.emit("train(batch=%d%s)" % (self.batch, ", epochs=1" if self.chance(0.2) else ""))
        return self.text()

    def text(self):
        head = ["# difftest model, seed %d: tests/difftest/gen.py --seed %d --count 1" % (self.seed, self.seed),
                "#% batch " + str(self.batch)]
        for name, dt, dims, hi in self.inputs:
            head.append("#%% input %s %s %d%s" % (name, dt, prod(dims), " %d" % hi if hi else ""))
        for name, dt, dims, classes in self.targets:
            head.append("#%% target %s %s %d%s" % (name, dt, prod(dims), " %d" % classes if classes else ""))
        for name, dt, dims in self.outputs:
            head.append("#%% output %s %s %d" % (name, dt, prod(dims)))
        if self.has_bn:
            head.append("#% bn 1")
        decl = []
        for name, dt, dims, _ in self.inputs:
            decl.append("    input %s: %s[%s]" % (name, dt, ", ".join(map(str, dims))))
        for name, dt, dims, _ in self.targets:
            decl.append("    target %s: %s[%s]" % (name, dt, ", ".join(map(str, dims))))
        return "\n".join(head + self.top + ["model %s {" % self.name] + decl + self.lines + ["}"]) + "\n"


def main():
    ap = argparse.ArgumentParser(description="random well-typed .nn models")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    for s in range(a.seed, a.seed + a.count):
        with open(os.path.join(a.dir, "d%d.nn" % s), "w") as f:
            f.write(Gen(s).generate())


if __name__ == "__main__":
    main()
