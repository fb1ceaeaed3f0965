"""Lesson 14 - Scaling out: memory and FLOP arithmetic, gradient accumulation, data parallelism.

Exercises: ``training_memory`` (the bytes of the model state, sharded or not),
``train_step_flops`` (the matrix products of one training step),
``accumulate_gradients`` (micro-batches that add up to the big batch),
``distributed_shard`` (each worker's share of an epoch, as PyTorch's
``DistributedSampler``) and ``ring_all_reduce`` (gradient averaging across workers,
simulated in NumPy). ``data_parallel_run`` trains a small ``TorchBert`` in several
processes with ``torch.distributed`` (the gloo backend on CPUs), averaging the
gradients by hand or with ``DistributedDataParallel``.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- memory

# Bytes per parameter of each part of the model state under AdamW.
#   fp32: float32 weights and gradients, and AdamW's two float32 moments.
#   bf16: bfloat16 weights and gradients for the forward and backward passes, plus the
#         optimizer's float32 master copy of the weights and its two float32 moments.
BYTES_PER_PARAMETER = {
    "fp32": {"weights": 4, "gradients": 4, "optimizer": 8},
    "bf16": {"weights": 2, "gradients": 2, "optimizer": 12},
}


def training_memory(num_params, precision="fp32", world_size=1, zero_stage=0):
    """Bytes of model state one worker holds while training with AdamW.

    Activations are left out: they depend on the batch, not only on the model.
    With data parallelism every one of the ``world_size`` workers holds a full
    copy of everything, unless it is sharded (ZeRO, Rajbhandari et al., 2020):
    stage 1 splits the optimizer state across the workers, stage 2 the
    gradients as well, stage 3 the weights as well. A sharded part costs each
    worker ``bytes / world_size``.

    Args:
        num_params: int, the number of parameters P.
        precision: "fp32" or "bf16" (see ``BYTES_PER_PARAMETER``).
        world_size: int >= 1, the number of workers.
        zero_stage: 0 (nothing sharded), 1, 2 or 3.

    Returns:
        dict with "weights", "gradients", "optimizer" and "total": the bytes one
        worker holds of each part, and their sum (floats; an exact whole number of
        bytes may be a Python int).
    """
    sharded_from = {"optimizer": 1, "gradients": 2, "weights": 3}
    memory = {}
    for part, per_param in BYTES_PER_PARAMETER[precision].items():
        size = float(num_params * per_param)
        memory[part] = size / world_size if zero_stage >= sharded_from[part] else size
    memory["total"] = memory["weights"] + memory["gradients"] + memory["optimizer"]
    return memory


# --------------------------------------------------------------------------- FLOPs


def train_step_flops(config, batch_size, seq_len, num_masked):
    """Floating-point operations of one masked-LM training step (matrix products only).

    A product of an (m, k) and a (k, n) matrix costs 2 m k n operations (a
    multiply and an add each). The backward pass costs twice the forward (one
    product for the input's gradient, one for the weight's), hence the factor 6
    = 2 x (1 + 2) on every term:

    - ``6 B T L (4 D^2 + 2 D F)``: the four attention projections and the two
      feed-forward layers of the L blocks, for all B T tokens;
    - ``12 B T L T D``: the attention itself, over the H heads: ``q k^T``, (T, D/H)
      by (D/H, T), and ``weights @ v``, (T, T) by (T, D/H);
    - ``6 M (D^2 + D V)``: the MLM head's dense layer and decoder, on the M
      masked positions only.

    Args:
        config: a ``BertConfig`` (num_layers L, hidden_size D, intermediate_size F,
            vocab_size V).
        batch_size: int B.
        seq_len: int T.
        num_masked: int M, the positions the MLM head predicts.

    Returns:
        int: the operations of one forward and backward pass (a Python int: the
        counts of large models pass 2**63).
    """
    L, D, F, V = config.num_layers, config.hidden_size, config.intermediate_size, config.vocab_size
    tokens = batch_size * seq_len
    return (6 * tokens * L * (4 * D * D + 2 * D * F) + 12 * tokens * L * seq_len * D
            + 6 * num_masked * (D * D + D * V))


# --------------------------------------------------------------------------- accumulation


def accumulate_gradients(micro_grads, micro_counts):
    """The gradient of the whole batch, from the gradients of its micro-batches.

    Each micro-batch's loss is a mean over its own ``count`` items (tokens or
    examples), so its gradient is too. The batch's loss is the mean over all
    items: the micro-batches' gradients weighted by their counts,
    ``sum_k count_k g_k / sum_k count_k``. A micro-batch with no item has a
    gradient of zeros and a weight of 0.

    Args:
        micro_grads: list of K dicts name -> float array, the same names and shapes
            in each: micro-batch k's mean gradient (not modified).
        micro_counts: list of K ints >= 0, not all 0: the items of each micro-batch.

    Returns:
        dict name -> float array, in the dtype of the gradients: the gradient of
        the mean over all the items.
    """
    total = sum(micro_counts)
    return {name: sum(count * grads[name] for grads, count in zip(micro_grads, micro_counts)) / total
            for name in micro_grads[0]}


# --------------------------------------------------------------------------- data parallelism


def distributed_shard(indices, world_size, rank, drop_last=False):
    """The examples worker ``rank`` reads in one epoch, as PyTorch's ``DistributedSampler``.

    Every worker must take the same number of steps (each step ends in an
    all-reduce that waits for all of them), so every shard has the same size:
    with ``drop_last`` the last ``len(indices) % world_size`` indices are
    dropped; otherwise the list is padded to a multiple of ``world_size`` by
    repeating it from its start (as many times as needed when ``world_size``
    exceeds its length). Worker r then takes every ``world_size``-th
    index, starting at position r.

    Args:
        indices: int array (n,), n >= 1: the epoch's order (shuffled or not).
        world_size: int W >= 1.
        rank: int in [0, W).
        drop_last: bool.

    Returns:
        int64 array of ``n // W`` (drop_last) or ``ceil(n / W)`` indices.
    """
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    if drop_last:
        indices = indices[:n - n % world_size]
    else:
        padding = (-n) % world_size
        indices = np.concatenate([indices, np.resize(indices, padding)])
    return indices[rank::world_size]


def ring_all_reduce(buffers):
    """Average W workers' buffers with a ring all-reduce, and count what each worker sends.

    The workers stand in a ring; worker w sends only to worker (w + 1) % W. Each
    buffer is cut into W chunks (``np.array_split`` of the flattened buffer).

    1. Reduce-scatter, W - 1 steps: at step s, worker w sends its running sum of
       chunk (w - s) % W to the next worker, which adds it to its own. Afterwards
       worker w holds the complete sum of chunk (w + 1) % W.
    2. All-gather, W - 1 steps: at step s, worker w sends its complete chunk
       (w + 1 - s) % W to the next worker, which overwrites its own copy.

    All the sends of a step happen at once. (No worker sends, in a step, the
    chunk it receives in that step, so a simulation may deliver them in any
    order.) Each worker sends 2 (W - 1) chunks, about 2 (W - 1) / W of a
    buffer, however many workers there are.

    Every addition is made as the ring makes it, chunk c summed from worker c
    around the ring: where the order of additions changes a float sum, the
    result is the ring's, not the one of ``sum(buffers) / W``.

    Args:
        buffers: list of W >= 1 float arrays of the same shape (not modified).

    Returns:
        (averaged, sent): a list of W arrays of that shape, each the mean of the
        buffers, in their float dtype (float32 stays float32); and an int64 array (W,), the number of values each worker sent.
    """
    W = len(buffers)
    chunks = [np.array_split(np.array(b, dtype=np.result_type(b, np.float32)).ravel(), W)
              for b in buffers]                               # chunks[w][c]: worker w's chunk c
    sent = np.zeros(W, dtype=np.int64)
    for step in range(W - 1):                                 # reduce-scatter
        messages = [(w, (w - step) % W, chunks[w][(w - step) % W].copy()) for w in range(W)]
        for w, c, data in messages:
            chunks[(w + 1) % W][c] += data
            sent[w] += data.size
    for step in range(W - 1):                                 # all-gather
        messages = [(w, (w + 1 - step) % W, chunks[w][(w + 1 - step) % W].copy()) for w in range(W)]
        for w, c, data in messages:
            chunks[(w + 1) % W][c] = data
            sent[w] += data.size
    shape = np.shape(buffers[0])
    averaged = [np.concatenate(worker).reshape(shape) / W for worker in chunks]
    return averaged, sent


# --------------------------------------------------------------------------- torch.distributed


def _classifier(config, seed):
    """A ``TorchBert`` with seeded weights, as a module whose forward gives the class logits."""
    import torch

    from solutions.bert import BertConfig
    from solutions.torch_bert import TorchBert

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(seed)
            self.bert = TorchBert(BertConfig(**config))

        def forward(self, input_ids, attention_mask):
            return self.bert.classifier_logits(self.bert(input_ids, attention_mask=attention_mask))

    return Classifier().train()


def _sgd_step(module, optimizer, batch, rows, average=None):
    """Forward, backward on the batch's ``rows``; ``average(params)`` before the step."""
    import torch

    part = {k: torch.from_numpy(v[rows]) for k, v in batch.items()}
    optimizer.zero_grad()
    logits = module(part["input_ids"], part["attention_mask"])
    torch.nn.functional.cross_entropy(logits, part["labels"]).backward()
    if average is not None:
        average()
    optimizer.step()


def _data_parallel_worker(rank, world_size, mode, job):
    """One process of ``data_parallel_run`` (importable, so that ``spawn`` can start it)."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{job['folder']}/rendezvous",
                            rank=rank, world_size=world_size)
    try:
        model = _classifier(job["config"], job["seed"])

        def average_by_hand():
            for p in model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                    p.grad /= world_size

        if mode == "ddp":
            # the MLM head takes no part in classification: DDP must be told to expect that
            module = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
            average = None
        else:
            module, average = model, average_by_hand
        optimizer = torch.optim.SGD(model.parameters(), lr=job["lr"])
        for batch in job["batches"]:
            rows = distributed_shard(np.arange(len(batch["labels"])), world_size, rank,
                                     drop_last=True)
            _sgd_step(module, optimizer, batch, rows, average)
        if rank == 0:
            torch.save({k: v.detach().clone() for k, v in model.bert.state_dict().items()},
                       f"{job['folder']}/rank0.pt")
        # Leave together: a process that tears its connections down while another still uses
        # them can make gloo abort ("terminate called without an active exception").
        dist.barrier()
        open(f"{job['folder']}/rank{rank}.done", "w").close()      # every collective is over
    finally:
        dist.destroy_process_group()


def data_parallel_run(config, batches, world_size, mode, seed=0, lr=0.1):
    """Train a ``TorchBert`` classifier with SGD in ``world_size`` processes (gloo, CPU).

    Each step, worker r takes its ``distributed_shard`` of the batch's examples
    (``drop_last``: equal shares). ``mode`` "manual" averages the gradients with
    ``dist.all_reduce`` (a sum) divided by the world size; "ddp" wraps the model
    in ``DistributedDataParallel``, which does the same while the backward pass
    runs. Dropout should be 0 in ``config``: each worker draws its own masks.

    Args:
        config: dict of ``BertConfig`` fields.
        batches: list of dicts with "input_ids", "attention_mask" (int64 (B, T))
            and "labels" (int64 (B,)), B a multiple of ``world_size``.
        world_size: int, the number of processes.
        mode: "manual" or "ddp".
        seed: the seed of the initial weights (the same in every process).
        lr: SGD's learning rate.

    Returns:
        dict name -> torch tensor: worker 0's ``TorchBert`` weights after the last step.
    """
    import os
    import tempfile

    import torch
    import torch.multiprocessing as mp

    if mode not in ("manual", "ddp"):
        raise ValueError(f"mode={mode!r}: use 'manual' or 'ddp'")
    with tempfile.TemporaryDirectory() as folder:
        job = {"config": config, "batches": batches, "seed": seed, "lr": lr, "folder": folder}
        try:
            mp.start_processes(_data_parallel_worker, args=(world_size, mode, job),
                               nprocs=world_size, join=True, start_method="spawn")
        except mp.ProcessExitedException:
            # Even so, gloo now and then aborts a process as it shuts down (once in about 50
            # runs on a busy 2-core machine). When every worker got past its last collective,
            # the training is over and rank 0's weights are saved: only the exit failed.
            if not all(os.path.exists(f"{folder}/rank{r}.done") for r in range(world_size)):
                raise
        return torch.load(f"{folder}/rank0.pt")


def single_process_run(config, batches, seed=0, lr=0.1):
    """The same training as ``data_parallel_run`` in one process, on whole batches."""
    import torch

    model = _classifier(config, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for batch in batches:
        _sgd_step(model, optimizer, batch, np.arange(len(batch["labels"])))
    return {k: v.detach().clone() for k, v in model.bert.state_dict().items()}
