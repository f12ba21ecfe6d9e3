#!/usr/bin/env python3
"""tests/gpu/torch_bench.py: W2, W3 and W5 in PyTorch on the GPU, beside `nnc bench --target cuda`.

The models, losses, optimizers and batches of bench/workloads/ (the same as bench/peers/torch_peer.py, on the
GPU instead of one CPU thread):
  W2.b32.train   10-50-1 MLP (relu), MSE, SGD(lr=0.01), batch 32
  W2.full.train  the same, batch 1000
  W3.train       100-128-10, cross-entropy on logits, Adam(lr=0.001, eps=1e-7), batch 1000
  W5.train       conv 32 3x3 relu, maxpool 2, flatten, dense 10, cross-entropy, Adam(lr=0.001, eps=1e-7), batch 32
  W5.epoch       60,000 samples in shuffled batches of 32, the data on the host
A train step is what `nnc bench` times: the batch starts in host memory (as nnc's M_train_step takes host
arrays), is copied to the GPU, then zero_grad, forward, loss, backward, optimizer step. Two ways:
  eager  the four-line loop as users write it
  graph  the whole step captured once as a CUDA graph (torch.cuda.graph, Adam(capturable=True)) and replayed
         after copying the batch into the graph's static input: PyTorch's own one-launch-per-step recipe
The epoch is the eager loop over a random permutation (torch.randperm), gathering each batch on the host.
Data are random (timing does not depend on the values). Times are medians over samples of back-to-back steps,
each sample ended by torch.cuda.synchronize().

  python3 tests/gpu/torch_bench.py            a table
  python3 tests/gpu/torch_bench.py --json     one JSON object (tests/gpu/run.sh reads it)
  python3 tests/gpu/torch_bench.py --quick    fewer samples
  python3 tests/gpu/torch_bench.py --cpu      a smoke test of this script without a GPU (eager only; the
                                              times mean nothing)
Exit 0; 1 when PyTorch or a GPU is missing (with a message).
"""
import argparse
import json
import statistics
import sys
import time


def die(msg):
    print(f"torch_bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


try:
    import torch
    from torch import nn
except ImportError as e:
    die(f"no PyTorch ({e})")

DEV = "cuda"


def sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


CASES = {  # name: (workload, batch)
    "W2.b32.train": ("w2", 32),
    "W2.full.train": ("w2", 1000),
    "W3.train": ("w3", 1000),
    "W5.train": ("w5", 32),
}


def build(w):
    if w == "w2":
        return nn.Sequential(nn.Linear(10, 50), nn.ReLU(), nn.Linear(50, 1))
    if w == "w3":
        return nn.Sequential(nn.Linear(100, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5408, 10))


def optimizer(w, params, capturable):
    if w == "w2":
        return torch.optim.SGD(params, lr=0.01)
    return torch.optim.Adam(params, lr=0.001, eps=1e-7, capturable=capturable)


def host_batches(w, batch, count):
    """`count` batches in (pinned-free) host memory, as a program's arrays are"""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        if w == "w2":
            out.append((torch.randn(batch, 10, generator=g), torch.randn(batch, 1, generator=g)))
        elif w == "w3":
            out.append((torch.randn(batch, 100, generator=g), torch.randint(0, 10, (batch,), generator=g)))
        else:
            out.append((torch.rand(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)))
    return out


def loss_fn(w):
    return nn.MSELoss() if w == "w2" else nn.CrossEntropyLoss()


def median_us(step, batches, min_s):
    """median over samples of the time per step; each sample >= min_s seconds of back-to-back steps"""
    k = 0
    for _ in range(10):  # warm-up (cuDNN picks its algorithms, the allocator settles)
        step(*batches[k % len(batches)])
        k += 1
    sync()
    samples = []
    deadline = time.perf_counter() + 12 * min_s
    while len(samples) < 9 and (len(samples) < 3 or time.perf_counter() < deadline):
        t0, calls = time.perf_counter(), 0
        while True:
            step(*batches[k % len(batches)])
            k += 1
            calls += 1
            if calls % 8 == 0:
                sync()
                if time.perf_counter() - t0 >= min_s:
                    break
        samples.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(samples)


def eager_case(w, batch, min_s):
    dev = torch.device(DEV)
    torch.manual_seed(0)
    model = build(w).to(dev)
    opt, lf = optimizer(w, model.parameters(), False), loss_fn(w)

    def step(x, y):
        x, y = x.to(dev), y.to(dev)
        opt.zero_grad()
        loss = lf(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return median_us(step, host_batches(w, batch, 8), min_s)


def graph_case(w, batch, min_s):
    dev = torch.device(DEV)
    torch.manual_seed(0)
    model = build(w).to(dev)
    opt, lf = optimizer(w, model.parameters(), True), loss_fn(w)
    hb = host_batches(w, batch, 8)
    sx, sy = hb[0][0].to(dev), hb[0][1].to(dev)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up on a side stream, as the recipe says
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            lf(model(sx), sy).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        static_loss = lf(model(sx), sy)
        static_loss.backward()
        opt.step()

    def step(x, y):
        sx.copy_(x)
        sy.copy_(y)
        g.replay()
        return static_loss

    return median_us(step, hb, min_s)


def epoch_s(n=60000, batch=32):
    """one eager epoch of W5 over host data, shuffled, each batch gathered on the host and copied"""
    dev = torch.device(DEV)
    torch.manual_seed(0)
    model = build("w5").to(dev)
    opt, lf = optimizer("w5", model.parameters(), False), loss_fn("w5")
    x = torch.rand(n, 1, 28, 28)
    y = torch.randint(0, 10, (n,))
    for i in range(5):  # warm-up
        xb, yb = x[i * batch:(i + 1) * batch].to(dev), y[i * batch:(i + 1) * batch].to(dev)
        opt.zero_grad()
        lf(model(xb), yb).backward()
        opt.step()
    sync()
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    total = torch.zeros((), device=dev)
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        xb, yb = x[idx].to(dev), y[idx].to(dev)
        opt.zero_grad()
        loss = lf(model(xb), yb)
        loss.backward()
        opt.step()
        total += loss.detach()
    total.item()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-epoch", action="store_true")
    ap.add_argument("--cpu", action="store_true")
    a = ap.parse_args()
    global DEV
    if a.cpu:
        DEV = "cpu"
    elif not torch.cuda.is_available():
        die("PyTorch sees no CUDA GPU")
    min_s = 0.05 if a.quick else 0.2
    res = {"device": torch.cuda.get_device_name(0) if DEV == "cuda" else "cpu", "torch": torch.__version__, "cases": {}}
    for name, (w, batch) in CASES.items():
        r = {}
        for kind, fn in (("eager_us", eager_case), ("graph_us", graph_case))[:2 if DEV == "cuda" else 1]:
            try:
                r[kind] = round(fn(w, batch, min_s), 2)
            except Exception as e:  # a graph capture PyTorch refuses: say so, keep the rest
                r[kind] = None
                r[kind.replace("_us", "_error")] = f"{type(e).__name__}: {e}"[:200]
        res["cases"][name] = r
    if not a.no_epoch:
        res["epoch_s"] = round(epoch_s(), 4)
    if a.json:
        print(json.dumps(res))
        return
    print(f"{res['device']}, torch {res['torch']}")
    for name, r in res["cases"].items():
        print(f"  {name:14} eager {r['eager_us']} us   graph {r.get('graph_us', '-')} us")
    if "epoch_s" in res:
        print(f"  W5.epoch       eager {res['epoch_s']} s")


if __name__ == "__main__":
    main()
