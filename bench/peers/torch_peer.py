#!/usr/bin/env python3
"""PyTorch peer for rnnkit's benchmark: one SPEC.md configuration at one thread count per process.

Run with Debian's interpreter (python3-torch 1.13, OpenBLAS) or the PyTorch 2.15 venv that
bench/peers/setup.sh builds (MKL + oneDNN); the same script serves both:

    /usr/bin/python3 bench/peers/torch_peer.py --config TRAIN-LSTM-S --threads 2 [--quick]
    /usr/bin/python3 bench/peers/torch_peer.py --info
    /usr/bin/python3 bench/peers/torch_peer.py --ceiling --threads 2   # torch.mm GFLOP/s: the GEMM limit
    /usr/bin/python3 bench/peers/torch_peer.py --export-onnx DIR   # GEN-LSTM step for onnxruntime-node

Prints one JSON record per line (SPEC.md shape: peer, variant, config, threads, metric, unit,
median, min, max, n), the metric then peak_rss_mb. bench/peers.js starts it, collects the lines
and writes results.jsonl; it also chooses the OpenBLAS environment (this script only reports
which core type OpenBLAS picked, because that changes the numbers by up to ~2x).
Exit status 3 when torch cannot be imported, so the caller can say so and skip.
"""
import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no PyTorch peer here"
    print(json.dumps({"peer": "pytorch", "error": "import torch failed: %r" % (e,)}), flush=True)
    sys.exit(3)

# SPEC.md standard configurations (the ids join records across implementations).
TRAIN = {
    "TRAIN-LSTM-S": dict(cell="lstm", V=96, E=64, H=256, L=1, T=64, B=32),
    "TRAIN-GRU-S": dict(cell="gru", V=96, E=64, H=256, L=1, T=64, B=32),
    "TRAIN-RNN-S": dict(cell="rnn", V=96, E=64, H=256, L=1, T=64, B=32),
    "TRAIN-LSTM-M": dict(cell="lstm", V=96, E=128, H=512, L=2, T=128, B=64),
}
GEN = dict(cell="lstm", V=96, E=64, H=256, L=2)
GEN_ROWS = {"GEN-LSTM-b1": 1, "GEN-LSTM-b64": 64}
LR = 2e-3
# Same step counts as bench/common.js STEPS.
FULL = dict(train_warmup=3, train_steps=20, gen_warmup=50, b1=2000, b64=300)
QUICK = dict(train_warmup=1, train_steps=3, gen_warmup=5, b1=50, b64=10)


def openblas_core():
    """The kernel set OpenBLAS chose (DYNAMIC_ARCH builds pick one per CPU unless
    OPENBLAS_CORETYPE forces it), or what libblas.so.3 is when it is not OpenBLAS."""
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except OSError as e:
        return "no libblas.so.3 (%s)" % e
    except AttributeError:
        return "not OpenBLAS (reference BLAS?)"


def blas_label(core):
    """Which BLAS this torch computes with: `openblas-<core>` (Debian's build) or `mkl` (PyPI's),
    with `+onednn` when its CPU RNN kernels come from oneDNN."""
    config = torch.__config__.show()
    if "BLAS_INFO=mkl" in config:
        return "mkl+onednn" if torch.backends.mkldnn.is_available() else "mkl"
    return "openblas-%s" % core


def gemm_ceiling(threads, size=2048, reps=5, rounds=7):
    """Median GFLOP/s of torch.mm on [size x size] float32 matrices: the fastest a GEMM runs on
    this machine at `threads` threads, the ceiling the benchmark's achieved GFLOP/s are read against."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        rates.append(2 * size**3 * reps / (time.perf_counter() - t0) / 1e9)
    return dict(metric="gemm_ceiling_gflops", unit="GFLOP/s", median=statistics.median(rates), min=min(rates), max=max(rates), n=rounds, size=size)


def fwd_flop_per_token(c):
    g = {"lstm": 4, "gru": 3, "rnn": 1}[c["cell"]]
    f = sum(2 * g * c["H"] * ((c["E"] if l == 0 else c["H"]) + c["H"]) for l in range(c["L"]))
    return f + 2 * c["H"] * c["V"]


class LM(nn.Module):
    """Embedding -> stacked RNN/LSTM/GRU (batch-first, as rnnkit's [rows, steps]) -> Linear."""

    def __init__(self, c):
        super().__init__()
        self.emb = nn.Embedding(c["V"], c["E"])
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c["cell"]]
        extra = {"nonlinearity": "tanh"} if c["cell"] == "rnn" else {}
        self.rnn = cls(c["E"], c["H"], num_layers=c["L"], batch_first=True, **extra)
        self.head = nn.Linear(c["H"], c["V"])

    def forward(self, x, state=None):
        y, state = self.rnn(self.emb(x), state)
        return self.head(y), state


def summary(samples):
    return dict(median=statistics.median(samples), min=min(samples), max=max(samples), n=len(samples))


def bench_train(name, steps):
    c = TRAIN[name]
    torch.manual_seed(1)
    model = LM(c)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(2)
    pool = [(torch.randint(c["V"], (c["B"], c["T"]), generator=g), torch.randint(c["V"], (c["B"], c["T"]), generator=g)) for _ in range(4)]
    times, losses = [], []
    for i in range(steps["train_warmup"] + steps["train_steps"]):
        x, y = pool[i % len(pool)]
        t0 = time.perf_counter_ns()
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, c["V"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = loss.item()  # rnnkit's trainStep returns the loss too: read it inside the timed step
        dt = (time.perf_counter_ns() - t0) / 1e9
        losses.append(lv)
        if i >= steps["train_warmup"]:
            times.append(dt)
    tps = [c["B"] * c["T"] / t for t in times]
    rec = dict(metric="train_tokens_per_s", unit="tok/s", **summary(tps))
    rec.update(step_ms_median=statistics.median(times) * 1e3, achieved_gflops=rec["median"] * 3 * fwd_flop_per_token(c) / 1e9, loss_first=losses[0], loss_last=losses[-1])
    return rec


def bench_gen(name, steps):
    rows = GEN_ROWS[name]
    c = GEN
    torch.manual_seed(1)
    model = LM(c).eval()
    g = torch.Generator().manual_seed(7)
    tok = torch.randint(c["V"], (rows, 1), generator=g)
    state = None  # nn.LSTM starts from zeros and returns (h, c), carried below
    n = steps["b1"] if rows == 1 else steps["b64"]
    times = []
    with torch.inference_mode():
        for i in range(steps["gen_warmup"] + n):
            t0 = time.perf_counter_ns()
            logits, state = model(tok, state)  # [rows, 1, V]
            # argmax read on the host: a Python list, as a JS caller reads its Float32Array
            tok = torch.tensor(logits[:, 0].argmax(-1).tolist()).unsqueeze(1)
            dt = (time.perf_counter_ns() - t0) / 1e9
            if i >= steps["gen_warmup"]:
                times.append(dt)
    if rows == 1:
        return dict(metric="us_per_token", unit="us/token", **summary([t * 1e6 for t in times]))
    return dict(metric="tokens_per_s", unit="tok/s", step_ms_median=statistics.median(times) * 1e3, **summary([rows / t for t in times]))


def export_onnx(out_dir):
    """GEN-LSTM step (token [B], h, c [L,B,H] -> logits [B,V], h, c) as ONNX for onnxruntime-node,
    plus a few reference steps so the ORT peer can check it computes the same function."""

    class Step(nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, token, h, c):
            y, (h2, c2) = self.lm.rnn(self.lm.emb(token).unsqueeze(1), (h, c))
            return self.lm.head(y[:, 0]), h2, c2

    torch.manual_seed(1)
    step = Step(LM(GEN).eval()).eval()
    L, H, V = GEN["L"], GEN["H"], GEN["V"]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "gen_lstm.onnx")
    dyn = {"token": {0: "B"}, "h": {1: "B"}, "c": {1: "B"}, "logits": {0: "B"}, "h_out": {1: "B"}, "c_out": {1: "B"}}
    args = (torch.zeros(2, dtype=torch.long), torch.zeros(L, 2, H), torch.zeros(L, 2, H))
    torch.onnx.export(step, args, path, input_names=["token", "h", "c"], output_names=["logits", "h_out", "c_out"], dynamic_axes=dyn, opset_version=13)
    g = torch.Generator().manual_seed(3)
    tok = torch.randint(V, (2,), generator=g)
    ref = dict(B=2, L=L, H=H, V=V, token0=tok.tolist(), steps=[])
    h = torch.zeros(L, 2, H)
    cs = torch.zeros(L, 2, H)
    with torch.inference_mode():
        for _ in range(5):
            logits, h, cs = step(tok, h, cs)
            tok = logits.argmax(-1)
            ref["steps"].append(dict(logits=logits.flatten().tolist(), argmax=tok.tolist()))
    with open(os.path.join(out_dir, "gen_lstm_ref.json"), "w") as f:
        json.dump(ref, f)
    print(json.dumps(dict(peer="pytorch", onnx=path, bytes=os.path.getsize(path))), flush=True)


def main():
    ap = argparse.ArgumentParser(description="PyTorch peer: one SPEC.md config at one thread count (JSON lines on stdout).")
    ap.add_argument("--config", choices=list(TRAIN) + list(GEN_ROWS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="few steps (smoke test, not a benchmark)")
    ap.add_argument("--variant", default=None, help="variant label (default: torch version + OpenBLAS core)")
    ap.add_argument("--info", action="store_true", help="print torch version and the OpenBLAS core, then exit")
    ap.add_argument("--ceiling", action="store_true", help="print torch.mm's GFLOP/s at --threads (the GEMM ceiling), then exit")
    ap.add_argument("--export-onnx", metavar="DIR", help="write DIR/gen_lstm.onnx and DIR/gen_lstm_ref.json, then exit")
    a = ap.parse_args()
    core = openblas_core()
    blas = blas_label(core)
    if a.info:
        print(json.dumps(dict(peer="pytorch", torch=torch.__version__, blas=blas, blas_core=core, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE"), OPENBLAS_L2_SIZE=os.environ.get("OPENBLAS_L2_SIZE"))), flush=True)
        return
    if a.export_onnx:
        export_onnx(a.export_onnx)
        return
    if a.ceiling:
        print(json.dumps(dict(peer="pytorch", variant="torch %s %s" % (torch.__version__, blas), threads=a.threads, **gemm_ceiling(a.threads))), flush=True)
        return
    if not a.config:
        ap.error("--config is required")
    torch.set_num_threads(a.threads)
    steps = QUICK if a.quick else FULL
    rec = bench_train(a.config, steps) if a.config in TRAIN else bench_gen(a.config, steps)
    base = dict(peer="pytorch", variant=a.variant or "torch %s %s" % (torch.__version__, blas), config=a.config, threads=a.threads)
    extra = dict(blas_core=core, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE"), quick=a.quick or None)
    print(json.dumps(dict(base, **rec, **extra)), flush=True)
    # ru_maxrss is in KiB on Linux; this process ran only this one configuration.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(base, metric="peak_rss_mb", unit="MiB", median=rss, min=rss, max=rss, n=1, **extra)), flush=True)


if __name__ == "__main__":
    main()
