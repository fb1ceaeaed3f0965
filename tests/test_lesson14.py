"""Lesson 14: the scaling arithmetic and data parallelism, against PyTorch where it has the same thing."""

import numpy as np
import pytest

from solutions import scaling
from solutions.bert import BertConfig, init_bert, mlm_loss_and_grads

rng = np.random.default_rng(14)


def test_training_memory_is_16_bytes_per_parameter_and_zero_3_divides_it_all():
    for precision in ("fp32", "bf16"):
        assert scaling.training_memory(1000, precision)["total"] == 16_000
        sharded = scaling.training_memory(1000, precision, world_size=8, zero_stage=3)
        assert sharded["total"] == 2_000
    stage1 = scaling.training_memory(1000, "bf16", world_size=4, zero_stage=1)
    assert stage1 == {"weights": 2000.0, "gradients": 2000.0, "optimizer": 3000.0, "total": 7000.0}


def test_train_step_flops_counts_what_pytorchs_flop_counter_counts():
    """PyTorch's FlopCounterMode counts the products of one real step of lesson 12's model.

    On the CPU it does not see inside the fused attention kernel here, so it may count
    everything but the 12 B T N T D of attention; either way the rest must agree exactly.
    """
    pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from solutions.torch_bert import make_train_step

    config = dict(vocab_size=1000, hidden_size=64, num_layers=2, num_heads=4,
                  intermediate_size=256, max_position_embeddings=32, dropout=0.0)
    B, T = 4, 32
    step = make_train_step(config, B, T)
    with FlopCounterMode(display=False) as counter:
        step()
    expected = scaling.train_step_flops(BertConfig(**config), B, T,
                                        int(step.batch["positions"].numel()))
    attention = 12 * B * T * config["num_layers"] * T * config["hidden_size"]
    assert counter.get_total_flops() in (expected, expected - attention)


def test_accumulated_micro_batches_give_the_whole_batch_gradient():
    config = BertConfig(60, 16, 2, 2, 32, 12, dropout=0.0)
    params = init_bert(config, rng, dtype=np.float64)
    ids = rng.integers(5, 60, size=(12, 12))
    batch = {"input_ids": ids, "attention_mask": np.ones_like(ids),
             "labels": np.where(rng.random(ids.shape) < 0.2, ids, -100)}
    batch["labels"][:4] = np.where(rng.random((4, 12)) < 0.6, ids[:4], -100)   # unequal counts
    _, full, _ = mlm_loss_and_grads(params, config, batch)
    micro, counts = [], []
    for rows in np.split(np.arange(12), 3):
        _, grads, stats = mlm_loss_and_grads(params, config, {k: v[rows] for k, v in batch.items()})
        micro.append({k: v.copy() for k, v in grads.items()})
        counts.append(stats["num_masked"])
    assert len(set(counts)) > 1
    scale = max(np.abs(g).max() for g in full.values())
    accumulated = scaling.accumulate_gradients(micro, counts)
    assert max(np.abs(accumulated[k] - full[k]).max() for k in full) < 1e-12 * scale
    plain = scaling.accumulate_gradients(micro, [1] * len(micro))
    assert max(np.abs(plain[k] - full[k]).max() for k in full) > 1e-3 * scale


@pytest.mark.parametrize("n,W,drop_last", [(10, 3, False), (10, 3, True), (2, 5, False),
                                           (12, 4, False), (17, 1, False), (7, 2, True)])
def test_distributed_shard_matches_torchs_distributed_sampler(n, W, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler

    for shuffle in (False, True):
        for epoch in (0, 3):
            order = (torch.randperm(n, generator=torch.Generator().manual_seed(7 + epoch)).numpy()
                     if shuffle else np.arange(n))
            seen = []
            for rank in range(W):
                sampler = DistributedSampler(range(n), num_replicas=W, rank=rank, shuffle=shuffle,
                                             seed=7, drop_last=drop_last)
                sampler.set_epoch(epoch)
                ours = scaling.distributed_shard(order, W, rank, drop_last)
                assert ours.tolist() == list(sampler), (n, W, rank, shuffle, epoch)
                seen.append(len(ours))
            assert len(set(seen)) == 1                    # every worker the same number of steps


@pytest.mark.parametrize("W", [1, 2, 3, 5, 8])
def test_ring_all_reduce_averages_and_sends_2_w_minus_1_chunks(W):
    for n in (1, 7, 40):
        buffers = [rng.normal(size=n) for _ in range(W)]
        originals = [b.copy() for b in buffers]
        averaged, sent = scaling.ring_all_reduce(buffers)
        mean = np.mean(originals, axis=0)
        assert all(np.allclose(a, mean, rtol=1e-12, atol=1e-14) for a in averaged)
        assert all(np.array_equal(b, o) for b, o in zip(buffers, originals))   # inputs untouched
        sizes = [len(c) for c in np.array_split(np.arange(n), W)]
        assert sent.sum() == 2 * (W - 1) * n                   # every chunk goes 2 (W - 1) hops
        assert sent.max() <= 2 * (W - 1) * max(sizes)


def _classification_batches(steps=3, B=8, T=10, V=40):
    batches = []
    for _ in range(steps):
        lengths = rng.integers(3, T + 1, size=B)
        mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
        batches.append({"input_ids": np.where(mask == 1, rng.integers(1, V, size=(B, T)), 0),
                        "attention_mask": mask, "labels": rng.integers(0, 2, size=B)})
    return batches


@pytest.mark.parametrize("mode", ["manual", "ddp"])
def test_two_processes_train_exactly_like_one(mode):
    pytest.importorskip("torch")
    config = dict(vocab_size=40, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                  max_position_embeddings=10, dropout=0.0)
    batches = _classification_batches()
    one = scaling.single_process_run(config, batches)
    initial = scaling.single_process_run(config, [])
    two = scaling.data_parallel_run(config, batches, world_size=2, mode=mode)
    moved = max((one[k] - initial[k]).abs().max().item() for k in one)
    difference = max((two[k] - one[k]).abs().max().item() for k in one)
    assert moved > 1e-3
    assert difference < 1e-6, difference
