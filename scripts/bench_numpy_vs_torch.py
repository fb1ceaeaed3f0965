"""How fast is the NumPy mini-BERT? One training step, NumPy against PyTorch, on the CPU.

Both sides train the same mini-BERT (lesson 07) on the same masked-LM batch, one
step at a time: forward, backward, AdamW. Each side lives in its own worker process
(so that neither changes the other's memory allocator or thread pools: sharing a
process makes the NumPy side about 10 % faster here, as PyTorch's allocations leave
glibc's malloc handing out big blocks without fresh page faults). The parent asks the
two workers for one step in turn (NumPy, PyTorch, NumPy, ...), so that both see the
same background load; after a few warm-up steps, the median of N steps gives
tokens/s = B * T / step time for each side, and their ratio.

The two sides:

- NumPy: ``solutions.bert.mlm_loss_and_grads`` (training mode, dropout 0.1) and
  lesson 02's ``AdamW`` over every parameter. The MLM head runs on the masked
  positions only (``mlm_loss_and_grads`` gathers them).
- PyTorch: Hugging Face's ``BertForMaskedLM`` (``attn_implementation="eager"``,
  ``hidden_act="gelu"``: the exact erf GELU, as ours) holding the same initial weights
  (copied with ``to_hf_state_dict``), in training mode, and ``torch.optim.AdamW``.
  The step calls ``model.bert`` and then ``model.cls`` on the masked positions only,
  as the NumPy side does (``model(..., labels=...)`` would score all B * T positions).
  Before timing, one forward pass without dropout checks that both give the same loss.

FLOPs are counted analytically, matrix products only (a multiply-add is 2 FLOPs;
the backward pass costs twice the forward: one product for the input's gradient, one
for the weight's). With N layers, D, F, V, T, and M predicted positions per batch:

    step FLOPs = 6 * B*T * N * (4 D^2 + 2 D F)     the projections and the feed-forward
               + 12 * B*T * N * T * D              attention: q k^T and weights @ v
               + 6 * M * (D^2 + D V)               the MLM head: dense and decoder

i.e. ~6 x (parameters in matrix products) x tokens, plus the attention terms.
Divided by the step time it gives the achieved GFLOP/s, compared with the peak of a
large float32 ``np.matmul`` measured in the same run.

Threads: ``--threads N`` sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
MKL_NUM_THREADS before NumPy is imported (the parent never imports NumPy; the workers
inherit the variables), then ``threadpoolctl`` (when installed) pins the BLAS pools,
and ``torch.set_num_threads(N)`` sets PyTorch's. To run your own code with a fixed
number of threads, set the variables yourself: ``OPENBLAS_NUM_THREADS=1 python ...``
(they are read when NumPy is imported; changing them later does nothing).

Memory: the NumPy step allocates fresh arrays for every activation and cache; glibc
serves the big ones (>= a few MB) with mmap, or returns freed memory to the system at
the end of a step, so the next step page-faults it in again (the "page faults / step"
row, each fault ~1-3 us of kernel time). ``--keep-freed-memory`` sets
MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ for both workers, so that freed
memory is kept and reused: it shows what the faults cost (on the test machine, about
10-15 % of the NumPy step; PyTorch barely changes).

Usage: python scripts/bench_numpy_vs_torch.py [--threads N] [--steps N] [--quick]
                                              [--no-torch] [--keep-freed-memory]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
CONFIG = dict(vocab_size=1000, hidden_size=128, num_layers=4, num_heads=4,
              intermediate_size=512, dropout=0.1)            # + max_position_embeddings >= T


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for NumPy's BLAS and for PyTorch (default 1)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per side (default 20, 3 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per side first (default 3, 1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=None, help="B (default 32)")
    parser.add_argument("--seq-len", type=int, default=None, help="T (default 64)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in a few seconds: B=8, T=32, 3 steps, small peak test")
    parser.add_argument("--no-torch", action="store_true", help="time the NumPy side only")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="set glibc's MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ in "
                             "both workers, so that freed memory is reused without page faults")
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.batch_size = args.batch_size or (8 if args.quick else 32)
    args.seq_len = args.seq_len or (32 if args.quick else 64)
    return args


def set_threads(n):
    """Before NumPy is imported: the environment variables its BLAS reads at load time."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(n)


# --------------------------------------------------------------------------- the two sides


def make_batch(np, config, B, T, rng, mask_prob=0.15):
    """Random ids in [1, V) (0 is [PAD]), no padding; ``mask_prob`` of the positions labelled."""
    input_ids = rng.integers(1, config.vocab_size, size=(B, T))
    labelled = rng.random((B, T)) < mask_prob
    labelled[0, 0] = True                                      # at least one
    return {"input_ids": input_ids, "token_type_ids": np.zeros((B, T), dtype=np.int64),
            "attention_mask": np.ones((B, T), dtype=np.int64),
            "labels": np.where(labelled, input_ids, -100)}


class NumpyTrainer:
    """Lesson 07's model and lesson 02's AdamW: ``step()`` is one training step."""

    def __init__(self, params, config, batch, seed=0, lr=1e-4):
        import numpy as np

        from solutions.bert import mlm_loss_and_grads
        from solutions.optimizers import AdamW

        self.loss_and_grads = mlm_loss_and_grads
        self.params, self.config, self.batch = params, config, batch
        self.names = list(params)
        self.optimizer = AdamW([params[n] for n in self.names], lr=lr, weight_decay=0.01)
        self.rng = np.random.default_rng(seed)

    def loss_without_dropout(self):
        return self.loss_and_grads(self.params, self.config, self.batch, compute_grads=False)[0]

    def step(self):
        loss, grads, _ = self.loss_and_grads(self.params, self.config, self.batch,
                                             training=True, rng=self.rng)
        self.optimizer.step([grads[n] for n in self.names])
        return loss


class TorchTrainer:
    """Hugging Face's BertForMaskedLM with our weights and torch.optim.AdamW."""

    def __init__(self, params, config, batch, lr=1e-4):
        import torch
        import transformers

        from solutions.bert import to_hf_state_dict

        transformers.logging.set_verbosity_error()
        torch.manual_seed(0)
        self.torch = torch
        hf_config = transformers.BertConfig(**config.to_hf(), attn_implementation="eager")
        self.model = transformers.BertForMaskedLM(hf_config).float()
        state = to_hf_state_dict(params, config)
        self.model.load_state_dict({k: torch.from_numpy(state[k].copy())
                                    for k in self.model.state_dict()})
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.01)
        self.inputs = {k: torch.from_numpy(batch[k])
                       for k in ("input_ids", "token_type_ids", "attention_mask")}
        labels = torch.from_numpy(batch["labels"]).reshape(-1)
        self.positions = torch.nonzero(labels != -100).squeeze(1)
        self.targets = labels[self.positions]

    def _loss(self):
        hidden = self.model.bert(**self.inputs)[0]                          # (B, T, D)
        selected = hidden.reshape(-1, hidden.shape[-1])[self.positions]     # (M, D)
        logits = self.model.cls(selected)                                   # (M, V)
        return self.torch.nn.functional.cross_entropy(logits, self.targets)

    def loss_without_dropout(self):
        self.model.eval()
        with self.torch.no_grad():
            loss = self._loss().item()
        self.model.train()
        return loss

    def step(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss()
        loss.backward()
        self.optimizer.step()
        return loss.item()


# --------------------------------------------------------------------------- measurements


def step_flops(config, B, T, num_masked):
    """The analytic FLOP count of one training step (see the module docstring)."""
    D, F, V, N = config.hidden_size, config.intermediate_size, config.vocab_size, config.num_layers
    projections = 6 * B * T * N * (4 * D * D + 2 * D * F)
    attention = 12 * B * T * N * T * D
    head = 6 * num_masked * (D * D + D * V)
    return projections + attention + head


def matmul_peak(np, n, repeats):
    """The best FLOP/s of ``a @ b`` on (n, n) float32 matrices."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b                                                                   # warm up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _page_faults():
    """Minor page faults of this process so far (0 where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: threads set through the environment only"
    pools = [f"{p['internal_api']} {p.get('version') or ''} x{p['num_threads']}".replace("  ", " ")
             for p in threadpool_info()]
    return ", ".join(pools) or "no BLAS pool found"


def worker(side, conn, threads, B, T, peak_size):
    """One side of the benchmark, in its own process: build it, then obey the parent.

    Sends ("ready", loss without dropout, description, number of labelled positions), or
    ("error", message, traceback, 0); then answers "step" with (seconds, page faults) of
    one training step, "peak" with the matmul FLOP/s, and returns at "stop".
    """
    try:
        sys.path.insert(0, str(ROOT))
        import numpy as np

        from solutions.bert import BertConfig, init_bert
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(threads)
        except ImportError:
            pass
        config = BertConfig(**CONFIG, max_position_embeddings=max(64, T))
        rng = np.random.default_rng(0)                  # the same weights and batch on both sides
        params = init_bert(config, rng, dtype=np.float32)
        batch = make_batch(np, config, B, T, rng)
        if side == "NumPy":
            trainer = NumpyTrainer(params, config, batch)
            description = f"BLAS: {blas_description()}"
        else:
            import torch
            torch.set_num_threads(threads)
            trainer = TorchTrainer(params, config, batch)
            description = f"torch {torch.__version__} x{torch.get_num_threads()}"
        conn.send(("ready", trainer.loss_without_dropout(), description,
                   int((batch["labels"] != -100).sum())))
    except Exception as exc:                                        # noqa: BLE001
        conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(), 0))
        return
    while True:
        command = conn.recv()
        if command == "step":
            faults = _page_faults()
            seconds = _timed(trainer.step)
            conn.send((seconds, _page_faults() - faults))
        elif command == "peak":
            conn.send(matmul_peak(np, peak_size, 3 if peak_size <= 1024 else 5))
        else:
            return


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)                     # inherited by the workers, before NumPy loads
    if args.keep_freed_memory:                    # read by glibc when a worker starts
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(2 ** 30)
        os.environ["MALLOC_TRIM_THRESHOLD_"] = str(2 ** 31 - 1)
    B, T = args.batch_size, args.seq_len
    peak_size = 1024 if args.quick else 2048
    context = multiprocessing.get_context("spawn")
    sides = ["NumPy"] + ([] if args.no_torch else ["PyTorch"])
    conns, processes, start = {}, [], {}
    for side in sides:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker, daemon=True,
                                  args=(side, child_end, args.threads, B, T, peak_size))
        process.start()
        child_end.close()                         # so that a dead worker means EOFError here
        conns[side] = parent_end
        processes.append(process)
    for side in sides:
        status, loss, description, num_masked = conns[side].recv()
        if status == "error":
            if side == "NumPy":
                raise SystemExit(f"the NumPy side failed: {loss}\n{description}")
            print(f"PyTorch side skipped: {loss} (pip install -e '.[dev]')")
            del conns[side]
            continue
        start[side] = (loss, description, num_masked)
    names = list(conns)

    def step(side):
        conns[side].send("step")
        return conns[side].recv()

    for _ in range(args.warmup):
        for side in names:
            step(side)
    times, faults = {side: [] for side in names}, {side: [] for side in names}
    for _ in range(args.steps):
        for side in names:
            seconds, count = step(side)
            times[side].append(seconds)
            faults[side].append(count)
    conns["NumPy"].send("peak")
    peak = conns["NumPy"].recv()
    for side in names:
        conns[side].send("stop")
    for process in processes:
        process.join(timeout=30)

    config = SimpleNamespace(**CONFIG)          # the sizes only: the parent never loads NumPy
    num_masked = start["NumPy"][2]
    flops = step_flops(config, B, T, num_masked)
    median = {n: statistics.median(times[n]) for n in names}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    def row(label, values):
        print(f"  {label:<26}" + "".join(f"{v:>16}" for v in values))

    print(f"mini-BERT masked-LM training step (forward + backward + AdamW), float32, CPU, "
          f"{args.threads} thread(s)")
    print(f"  V={config.vocab_size} D={config.hidden_size} layers={config.num_layers} "
          f"heads={config.num_heads} F={config.intermediate_size} B={B} T={T} "
          f"dropout={config.dropout}; MLM head on the {num_masked} labelled positions "
          f"({num_masked / (B * T):.0%})")
    print(f"  one process per side; {args.warmup} warm-up + {args.steps} timed steps per side, "
          f"taking turns; load average {load:.2f} on {os.cpu_count()} CPUs"
          + ("; glibc keeps freed memory (--keep-freed-memory)" if args.keep_freed_memory else ""))
    for side in names:
        print(f"  {side}: {start[side][1]}")
    print()
    row("", names)
    row("loss at start (no dropout)", [f"{start[n][0]:.5f}" for n in names])
    row("step time, median", [f"{median[n] * 1e3:.1f} ms" for n in names])
    row("step time, min - max", [f"{min(times[n]) * 1e3:.0f} - {max(times[n]) * 1e3:.0f} ms"
                                 for n in names])
    row("tokens/s", [f"{B * T / median[n]:.0f}" for n in names])
    row("achieved GFLOP/s", [f"{flops / median[n] / 1e9:.1f}" for n in names])
    row("share of matmul peak", [f"{flops / median[n] / peak:.0%}" for n in names])
    row("page faults / step", [f"{statistics.median(faults[n]):.0f}" for n in names])
    print()
    print(f"  step FLOPs (analytic)       {flops / 1e9:.2f} GFLOP")
    print(f"  matmul peak (np.matmul)     {peak / 1e9:.1f} GFLOP/s "
          f"(float32, {peak_size}^2, best of {3 if peak_size <= 1024 else 5})")
    if "PyTorch" in median:
        ratio = median["PyTorch"] / median["NumPy"]
        print(f"  ratio NumPy / PyTorch       {ratio:.2f}x tokens/s (target >= 0.7x)")


if __name__ == "__main__":
    main()
