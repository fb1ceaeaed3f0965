"""Lesson 14 - Scaling out: exercise specs.

Everything here is NumPy and arithmetic: the multi-process part of the lesson
(``torch.distributed``) is shown in the notebook and tested in
``tests/test_lesson14.py``, not graded.
"""

import numpy as np

from solutions import bert, scaling

from ..compare import FLOAT32, _describe_type
from ..spec import Case, Exercise, Lesson, Mistake, call, named_results, not_modified

PRELUDE = "import math\n\nimport numpy as np\n\nfrom solutions.scaling import BYTES_PER_PARAMETER\n"

# --------------------------------------------------------------------------- training_memory


def _memory_cases(rng):
    def case(name, P, precision="fp32", world_size=1, zero_stage=0):
        return Case(name, {"num_params": P},
                    {"precision": precision, "world_size": world_size, "zero_stage": zero_stage})
    return [
        case("BERT-base, fp32, one worker", 110_000_000),
        case("bf16, one worker", 340_000_000, "bf16"),
        case("8 workers, no sharding", 1_000_000, world_size=8),
        case("ZeRO stage 1, 8 workers, bf16", 7_000_000_000, "bf16", 8, 1),
        case("ZeRO stage 2, 4 workers", 22_713_216, "fp32", 4, 2),
        case("ZeRO stage 3, 64 workers, bf16", 70_000_000_000, "bf16", 64, 3),
        case("ZeRO stage 3, one worker: nothing to share", 1001, "fp32", 1, 3),
        case("ZeRO stage 2, 3 workers, 1,000 parameters", 1000, "bf16", 3, 2),
    ]


_MEMORY = """def training_memory(num_params, precision="fp32", world_size=1, zero_stage=0):
    table = {table}
    sharded_from = {stages}
    memory = {{}}
    for part, per_param in table[precision].items():
        size = {size}
        memory[part] = size {divide} world_size if zero_stage >= sharded_from[part] else size
    memory["total"] = memory["weights"] + memory["gradients"] + memory["optimizer"]
    return memory
"""
_TABLE = {"fp32": {"weights": 4, "gradients": 4, "optimizer": 8},
          "bf16": {"weights": 2, "gradients": 2, "optimizer": 12}}
_STAGES = {"optimizer": 1, "gradients": 2, "weights": 3}


def _memory_mistake(table=None, stages=None, size="float(num_params * per_param)", divide="/"):
    return _MEMORY.format(table=table or _TABLE, stages=stages or _STAGES, size=size,
                          divide=divide)


def run_memory(fn, case):
    memory = call(fn, case)
    if isinstance(memory, dict):   # an exact byte count as a Python int is as good as a float
        memory = {part: float(value) if type(value) is int else value
                  for part, value in memory.items()}
    return memory


training_memory = Exercise(
    id="14.training_memory", symbol="training_memory", points=2,
    title="the bytes of weights, gradients and AdamW's state, sharded or not",
    reference=scaling.training_memory, cases=_memory_cases, run=run_memory,
    mistakes=[
        Mistake("AdamW with one moment",
                "AdamW keeps two float32 numbers per parameter, m and v: 8 bytes in fp32",
                _memory_mistake(table={"fp32": {"weights": 4, "gradients": 4, "optimizer": 4},
                                       "bf16": _TABLE["bf16"]})),
        Mistake("no float32 master weights in bf16",
                "in bf16 training the optimizer keeps a float32 copy of the weights as well as "
                "m and v (12 bytes): bfloat16 alone cannot hold small updates",
                _memory_mistake(table={"fp32": _TABLE["fp32"],
                                       "bf16": {"weights": 2, "gradients": 2, "optimizer": 8}})),
        Mistake("the stages one off",
                "stage 1 shards only the optimizer state, stage 2 the gradients too, stage 3 the "
                "weights too",
                _memory_mistake(stages={"optimizer": 1, "gradients": 1, "weights": 2})),
        Mistake("a sharded part divided with //",
                "a sharded part is bytes / world_size: // drops the fraction (1,000 bf16 "
                "gradients over 3 workers are 666.67 bytes a worker, on average)",
                _memory_mistake(size="num_params * per_param", divide="//")),
        Mistake("everything sharded from stage 1",
                "each stage shards one more part: optimizer state (1), gradients (2), weights (3)",
                _memory_mistake(stages={"optimizer": 1, "gradients": 1, "weights": 1})),
    ],
)

# --------------------------------------------------------------------------- train_step_flops


def run_flops(fn, case):
    config = bert.BertConfig(**case.data["config"])
    flops = fn(config, *case.args.values())
    # a Python int, as the docstring says: a model's whole run passes 2**63, where an int64
    # wraps around with no more than a warning
    kind = "a Python int" if type(flops) is int else _describe_type(flops)
    return {"FLOPs": flops, "returned as": kind}


def _flops_cases(rng):
    def case(name, B, T, M, **fields):
        config = dict(vocab_size=1000, hidden_size=128, num_layers=4, num_heads=4,
                      intermediate_size=512, max_position_embeddings=128)
        config.update(fields)
        return Case(name, {"batch_size": B, "seq_len": T, "num_masked": M},
                    data={"config": config})
    base = dict(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
                intermediate_size=3072, max_position_embeddings=512)
    return [
        # T != D and H != 2, so that no two known mistakes give the same count here
        case("a mini-BERT (4 layers, D = 96, 3 heads), 32 x 128, 614 masked", 32, 128, 614,
             hidden_size=96, num_heads=3, intermediate_size=384),
        case("BERT-base, 1 x 128, 19 masked", 1, 128, 19, **base),
        case("BERT-base, 256 x 512, 15 % masked", 256, 512, 19661, **base),
        case("nothing masked", 4, 16, 0, vocab_size=50, hidden_size=16, num_layers=2,
             intermediate_size=64, max_position_embeddings=16),
        case("F = 2 D, one layer, T = 1", 3, 1, 1, hidden_size=8, num_layers=1,
             intermediate_size=16),
        case("a long sequence: T = 2048", 1, 2048, 300, max_position_embeddings=2048),
    ]


_FLOPS = """def train_step_flops(config, batch_size, seq_len, num_masked):
    L, D, F, V = config.num_layers, config.hidden_size, config.intermediate_size, config.vocab_size
    H = config.num_heads
    tokens = batch_size * seq_len
    return ({k} * tokens * L * ({proj} + {ffn}) + {attention}
            + {head_k} * {head} * (D * D + D * V))
"""


def _flops_mistake(**parts):
    defaults = {"k": "6", "ffn": "2 * D * F", "attention": "12 * tokens * L * seq_len * D",
                "head": "num_masked", "proj": "4 * D * D"}
    defaults.update(parts)
    defaults.setdefault("head_k", defaults["k"])
    return _FLOPS.format(**defaults)


train_step_flops = Exercise(
    id="14.train_step_flops", symbol="train_step_flops", points=2,
    title="the matrix-product FLOPs of one training step",
    reference=scaling.train_step_flops, cases=_flops_cases, run=run_flops,
    mistakes=[
        Mistake("a NumPy int64",
                "return a Python int (int(...), or arithmetic on Python ints): an int64 wraps "
                "around past 2**63, which a large model's whole run passes, with only a warning",
                "from solutions import scaling\n\n\n"
                "def train_step_flops(config, batch_size, seq_len, num_masked):\n"
                "    return np.int64(scaling.train_step_flops(config, batch_size, seq_len, "
                "num_masked))\n"),
        Mistake("the forward pass only",
                "the backward pass costs twice the forward (the input's gradient and the "
                "weight's): 6 operations per parameter and token, not 2",
                _flops_mistake(k="2", attention="4 * tokens * L * seq_len * D")),
        Mistake("a multiply-add counted once",
                "a multiply-add is 2 floating-point operations: an (m, k) by (k, n) product "
                "costs 2 m k n",
                _flops_mistake(k="3", attention="6 * tokens * L * seq_len * D")),
        Mistake("attention's own products left out",
                "q k^T and weights @ v have no parameters but cost 12 B T L T D in all: the "
                "6 N D rule leaves them out, and they grow with T",
                _flops_mistake(attention="0")),
        Mistake("one of attention's two products",
                "attention has two products, q k^T and weights @ v, each 2 T^2 D operations "
                "over the heads forward and 6 T^2 D with the backward: 12 B T L T D in all",
                _flops_mistake(attention="6 * tokens * L * seq_len * D")),
        Mistake("attention's products divided by the heads",
                "each head multiplies (T, D/H) by (D/H, T), and there are H of them: the heads "
                "together cost as much as one head of width D, 12 B T L T D in all",
                _flops_mistake(attention="12 * tokens * L * seq_len * D // H")),
        Mistake("attention's products in one layer only",
                "every one of the L blocks has its own attention: 12 B T L T D",
                _flops_mistake(attention="12 * tokens * seq_len * D")),
        Mistake("the MLM head's backward pass left out",
                "the head is trained too: its forward and backward cost 6 M (D^2 + D V), not 2",
                _flops_mistake(head_k="2")),
        Mistake("the MLM head on every position",
                "the head runs on the M masked positions only (lesson 09's mlm_loss_and_grads): "
                "6 M (D^2 + D V)",
                _flops_mistake(head="tokens")),
        Mistake("one feed-forward layer",
                "the feed-forward network has two layers, D -> F and F -> D: 2 D F per token",
                _flops_mistake(ffn="D * F")),
        Mistake("three projections",
                "attention has four D x D projections: the query, the key, the value and the "
                "output (the one after the heads are merged): 4 D^2 per token and layer",
                _flops_mistake(proj="3 * D * D")),
    ],
)

# --------------------------------------------------------------------------- accumulate_gradients


def _grads(rng, shapes, dtype=np.float64):
    return {name: rng.normal(size=shape).astype(dtype) for name, shape in shapes.items()}


def _accumulate_cases(rng):
    shapes = {"W": (3, 4), "b": (4,)}
    return [
        Case("K=3 micro-batches of 5, 3 and 8 tokens",
             {"micro_grads": [_grads(rng, shapes) for _ in range(3)], "micro_counts": [5, 3, 8]}),
        Case("equal counts: the plain mean",
             {"micro_grads": [_grads(rng, shapes) for _ in range(4)], "micro_counts": [6] * 4}),
        Case("a micro-batch with no masked token",
             {"micro_grads": [_grads(rng, shapes), {k: np.zeros(s) for k, s in shapes.items()},
                              _grads(rng, shapes)], "micro_counts": [7, 0, 2]}),
        Case("K=1", {"micro_grads": [_grads(rng, {"x": (5,)})], "micro_counts": [3]}),
        Case("float32 gradients, counts 1 and 31",
             {"micro_grads": [_grads(rng, shapes, np.float32) for _ in range(2)],
              "micro_counts": [1, 31]}),
        Case("many parameters, K=5",
             {"micro_grads": [_grads(rng, {f"p{i}": (2, i + 1) for i in range(6)})
                              for _ in range(5)],
              "micro_counts": [int(c) for c in rng.integers(1, 40, size=5)]}),
    ]


_ACCUMULATE = """def accumulate_gradients(micro_grads, micro_counts):
    K = len(micro_grads)
    total = sum(micro_counts)
    return {{name: {combine} for name in micro_grads[0]}}
"""


def _accumulate_mistake(combine):
    return _ACCUMULATE.format(combine=combine)


accumulate_gradients = Exercise(
    id="14.accumulate_gradients", symbol="accumulate_gradients", points=2,
    title="micro-batch gradients that add up to the batch's",
    reference=scaling.accumulate_gradients, cases=_accumulate_cases,
    run=not_modified("micro_grads", result_name="the batch's gradient"),
    tolerance=FLOAT32,
    mistakes=[
        Mistake("the first micro-batch's arrays used as the sum",
                "start each sum from a new array (count * g is one): `acc = micro_grads[0][name]` "
                "then `acc *= ...` or `acc += ...` changes the caller's gradients",
                "def accumulate_gradients(micro_grads, micro_counts):\n"
                "    total = sum(micro_counts)\n"
                "    out = {}\n"
                "    for name in micro_grads[0]:\n"
                "        acc = micro_grads[0][name]\n"
                "        acc *= micro_counts[0]\n"
                "        for grads, count in zip(micro_grads[1:], micro_counts[1:]):\n"
                "            acc += count * grads[name]\n"
                "        acc /= total\n"
                "        out[name] = acc\n"
                "    return out\n"),
        Mistake("the mean of the micro-batches' means",
                "a micro-batch with more tokens weighs more in the batch's mean: weight each "
                "gradient by its count and divide by the total count",
                _accumulate_mistake("sum(g[name] for g in micro_grads) / K")),
        Mistake("the sum of the means",
                "summing the K mean gradients gives K times too large a step (with equal "
                "counts): weight by the counts and divide by their total",
                _accumulate_mistake("sum(g[name] for g in micro_grads)")),
        Mistake("weighted, divided by K",
                "the weighted sum is over all the tokens: divide by the total count, "
                "sum(micro_counts), not by the number of micro-batches",
                _accumulate_mistake("sum(c * g[name] for g, c in zip(micro_grads, micro_counts)) / K")),
        Mistake("the counts only in the denominator",
                "each micro-batch's gradient is already a mean over its own tokens: multiply "
                "it by its count before dividing by the total",
                _accumulate_mistake("sum(g[name] for g in micro_grads) / total")),
    ],
)

# --------------------------------------------------------------------------- distributed_shard


def _shard_cases(rng):
    def case(name, indices, W, r, drop_last=False):
        return Case(name, {"indices": np.asarray(indices, dtype=np.int64), "world_size": W,
                           "rank": r}, {"drop_last": drop_last})
    perm = rng.permutation(11)
    return [
        case("n=10, W=3, rank 0: padded to 12", np.arange(10), 3, 0),
        case("n=10, W=3, rank 2: its last index is a repeat", np.arange(10), 3, 2),
        case("a shuffled epoch, n=11, W=4, rank 1", perm, 4, 1),
        case("drop_last: n=10, W=3, rank 1", np.arange(10), 3, 1, True),
        case("drop_last, shuffled, rank 3", perm, 4, 3, True),
        case("n=2 < W=5: repeats of repeats, rank 4", [7, 3], 5, 4),
        case("W=1: the whole epoch", perm, 1, 0),
        case("n a multiple of W: no padding", np.arange(100, 112), 4, 3),
    ]


_SHARD = """def distributed_shard(indices, world_size, rank, drop_last=False):
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    if drop_last:
        indices = indices[:n - n % world_size]
    else:
        padding = (-n) % world_size
        indices = {pad}
    return {take}
"""


def _shard_mistake(**parts):
    defaults = {"pad": "np.concatenate([indices, np.resize(indices, padding)])",
                "take": "indices[rank::world_size]"}
    return _SHARD.format(**dict(defaults, **parts))


distributed_shard = Exercise(
    id="14.distributed_shard", symbol="distributed_shard", points=2,
    title="one worker's share of an epoch (DistributedSampler)",
    reference=scaling.distributed_shard, cases=_shard_cases,
    mistakes=[
        Mistake("contiguous blocks",
                "DistributedSampler deals the indices out like cards: worker r takes positions "
                "r, r + W, r + 2W, ... (indices[rank::world_size]), not a block",
                _shard_mistake(take="np.array_split(indices, world_size)[rank]")),
        Mistake("no padding",
                "shards of unequal sizes make the workers take different numbers of steps, and "
                "the all-reduce of the last step waits forever: pad to a multiple of W by "
                "repeating indices from the start",
                _shard_mistake(pad="indices")),
        Mistake("padded with the last index",
                "PyTorch pads by repeating the list from its start (np.resize), not its last index",
                _shard_mistake(pad="np.concatenate([indices, np.full(padding, indices[-1])])")),
        Mistake("padded with zeros",
                "pad with indices of the epoch itself, repeated from the start: 0 may not even "
                "be in this epoch's list",
                _shard_mistake(pad="np.concatenate([indices, np.zeros(padding, dtype=np.int64)])")),
    ],
)

# --------------------------------------------------------------------------- ring_all_reduce


def _ring_results(fn, case):
    result = named_results(call(fn, case), ("averaged", "sent"))
    if isinstance(result.get("averaged"), tuple):
        result["averaged"] = list(result["averaged"])
    return result


# the notebook goes on to compare the result with the mean of the buffers it passed
run_ring = not_modified("buffers", run=_ring_results)


def _ring_cases(rng):
    def case(name, W, shape, dtype=np.float64):
        return Case(name, {"buffers": [rng.normal(size=shape).astype(dtype) for _ in range(W)]})
    return [
        case("W=4 workers, 10 values: chunks of 3, 3, 2, 2", 4, (10,)),
        case("W=2, (3, 4) matrices", 2, (3, 4)),
        case("W=1: nothing to send", 1, (5,)),
        case("W=3, 2 values: an empty chunk", 3, (2,)),
        case("W=8, 100 float32 values", 8, (100,), np.float32),
        case("W=5, (7, 3)", 5, (7, 3)),
        # 1e17 + 1 is 1e17 in float64: each chunk's sum depends on the worker the ring starts
        # it from (0, 0 and 1 here), where sum(buffers) gives 0 everywhere
        Case("W=3, 1e17, 1 and -1e17: the ring's order of additions",
             {"buffers": [np.full(6, v) for v in (1e17, 1.0, -1e17)]}),
    ]


_RING = """def ring_all_reduce(buffers):
    W = len(buffers)
    chunks = [np.array_split(np.array(b, dtype=np.result_type(b, np.float32)).ravel(), W)
              for b in buffers]
    sent = np.zeros(W, dtype=np.int64)
    for step in range(W - 1):
        messages = [(w, (w - step) % W, chunks[w][(w - step) % W].copy()) for w in range(W)]
        for w, c, data in messages:
            chunks[(w + 1) % W][c] += data
            sent[w] += data.size
    for step in range({gather_steps}):
        messages = [(w, {gather_chunk}, chunks[w][{gather_chunk}].copy()) for w in range(W)]
        for w, c, data in messages:
            chunks[(w + 1) % W][c] = data
            sent[w] += data.size
    shape = np.shape(buffers[0])
    return [np.concatenate(worker).reshape(shape) / {divide} for worker in chunks], sent
"""
def _ring_mistake(**parts):
    defaults = {"gather_chunk": "(w + 1 - step) % W", "gather_steps": "W - 1", "divide": "W"}
    return _RING.format(**dict(defaults, **parts))


ring_all_reduce = Exercise(
    id="14.ring_all_reduce", symbol="ring_all_reduce", points=3,
    title="a ring all-reduce, simulated",
    reference=scaling.ring_all_reduce, cases=_ring_cases, run=run_ring, tolerance=FLOAT32,
    mistakes=[
        Mistake("the sum, not the mean",
                "all-reduce adds the buffers; data parallelism wants their mean: divide by W",
                _ring_mistake(divide="1")),
        Mistake("the all-gather starts from the wrong chunk",
                "after the reduce-scatter worker w holds the finished chunk (w + 1) % W: at "
                "all-gather step s it passes on chunk (w + 1 - s) % W, the one it finished or "
                "just received",
                _ring_mistake(gather_chunk="(w - step) % W")),
        Mistake("no all-gather",
                "after the reduce-scatter each worker has the full sum of one chunk only: W - 1 "
                "all-gather steps pass the finished chunks around the ring",
                _ring_mistake(gather_steps="0")),
        Mistake("the mean computed directly",
                "simulate the ring: each chunk is summed around the ring, chunk c from worker c; "
                "sum(buffers) / W adds in another order, and the "
                "traffic counted by a formula does not show that the ring works",
                "def ring_all_reduce(buffers):\n"
                "    W = len(buffers)\n"
                "    mean = sum(buffers) / W\n"
                "    n = np.size(buffers[0])\n"
                "    sizes = [len(c) for c in np.array_split(np.arange(n), W)]\n"
                "    sent = np.array([2 * n - sizes[(w + 1) % W] - sizes[(w + 2) % W] if W > 1 else 0\n"
                "                     for w in range(W)], dtype=np.int64)\n"
                "    return [mean.copy() for _ in range(W)], sent\n"),
        Mistake("everyone sends everything to everyone",
                "the mean is right, but each worker sent its whole buffer W - 1 times; the ring "
                "sends 2 (W - 1) chunks of about n / W values each",
                "def ring_all_reduce(buffers):\n"
                "    W = len(buffers)\n"
                "    mean = sum(np.array(b, dtype=np.result_type(b, np.float32)) for b in buffers) / W\n"
                "    sent = np.full(W, (W - 1) * np.size(buffers[0]), dtype=np.int64)\n"
                "    return [mean.copy() for _ in range(W)], sent\n"),
    ],
)


LESSON = Lesson(
    id="14", slug="14_scaling", title="Scaling out", prelude=PRELUDE,
    exercises=[training_memory, train_step_flops, accumulate_gradients, distributed_shard,
               ring_all_reduce],
)
