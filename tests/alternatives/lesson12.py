"""Correct solutions for lesson 12, written differently from the reference."""

ALTERNATIVES = {
    "12.batch_to_tensors": [
        # torch.as_tensor with the dtype chosen from NumPy's kind
        "def batch_to_tensors(batch, device='cpu'):\n"
        "    dtypes = {'f': torch.float32, 'b': torch.bool}\n"
        "    return {name: torch.as_tensor(np.asarray(a, order='C'),\n"
        "                                  dtype=dtypes.get(a.dtype.kind, torch.int64), device=device)\n"
        "            for name, a in batch.items()}\n",
    ],
    "12.torch_grad_of": [
        # torch.autograd.grad of sum(out * dout), tensors made with from_numpy
        "def torch_grad_of(fn, inputs, dout, device='cpu'):\n"
        "    leaves = [torch.from_numpy(np.array(x, dtype=np.float64)).to(device).requires_grad_()\n"
        "              for x in inputs]\n"
        "    out = fn(*leaves)\n"
        "    upstream = torch.from_numpy(np.asarray(dout, dtype=np.float64)).to(device)\n"
        "    grads = torch.autograd.grad((out * upstream).sum(), leaves)\n"
        "    return [g.detach().cpu().numpy() for g in grads]\n",
    ],
    "12.load_numpy_weights": [
        # load_state_dict (which copies in place) with the tied decoder given twice
        "def load_numpy_weights(model, params):\n"
        "    state = dict(model.state_dict())\n"
        "    for ours, (theirs, transposed) in torch_names(model.config).items():\n"
        "        value = torch.from_numpy(np.ascontiguousarray(params[ours]))\n"
        "        state[theirs] = value.t() if transposed else value\n"
        "    state['mlm.decoder.weight'] = state['embeddings.word.weight']\n"
        "    model.load_state_dict(state)\n"
        "    return model\n",
    ],
    "12.sdpa_attention": [
        # the softmax written out, masked_fill with -inf, einsum for the heads
        "def sdpa_attention(x, attention_mask, query, key, value, output, num_heads):\n"
        "    B, T, D = x.shape\n"
        "    d = D // num_heads\n"
        "    q, k, v = (f(x).reshape(B, T, num_heads, d) for f in (query, key, value))\n"
        "    scores = torch.einsum('bqhd,bkhd->bhqk', q, k) / math.sqrt(d)\n"
        "    if attention_mask is not None:\n"
        "        padding = attention_mask[:, None, None, :] == 0\n"
        "        scores = scores.masked_fill(padding, float('-inf'))\n"
        "    weights = torch.softmax(scores, dim=-1)\n"
        "    context = torch.einsum('bhqk,bkhd->bqhd', weights, v).reshape(B, T, D)\n"
        "    return output(context)\n",
    ],
    "12.torch_training_step": [
        # gradients zeroed in place, the clipping norm computed by hand
        "def torch_training_step(model, batch, loss_fn, optimizer, scheduler=None, max_grad_norm=1.0):\n"
        "    lr = optimizer.param_groups[0]['lr']\n"
        "    optimizer.zero_grad(set_to_none=False)\n"
        "    loss = loss_fn(model, batch)\n"
        "    loss.backward()\n"
        "    grads = [p.grad for p in model.parameters() if p.grad is not None]\n"
        "    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))\n"
        "    if max_grad_norm and norm > max_grad_norm:\n"
        "        for g in grads:\n"
        "            g.mul_(max_grad_norm / (norm + 1e-6))\n"
        "    optimizer.step()\n"
        "    if scheduler:\n"
        "        scheduler.step()\n"
        "    return {'loss': float(loss), 'grad_norm': float(norm), 'learning_rate': float(lr)}\n",
    ],
    "12.torch_adamw_trajectory": [
        # an nn.Parameter whose gradient comes from backward() of a surrogate loss <g, p>
        "def torch_adamw_trajectory(initial, gradient_fn, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,\n"
        "                           weight_decay=0.01, device='cpu'):\n"
        "    p = nn.Parameter(torch.as_tensor(np.array(initial, dtype=np.float64), device=device))\n"
        "    opt = torch.optim.AdamW([p], lr, tuple(betas), eps, weight_decay)\n"
        "    rows = np.empty((steps,) + np.shape(initial))\n"
        "    for t in range(steps):\n"
        "        opt.zero_grad()\n"
        "        g = torch.as_tensor(gradient_fn(p.detach().cpu().numpy().copy()), device=device)\n"
        "        (p * g).sum().backward()\n"
        "        opt.step()\n"
        "        rows[t] = p.detach().cpu().numpy()\n"
        "    return rows\n",
    ],
    "12.bf16_mlm_loss": [
        # the head on every position, ignore_index=-100 skipping the others
        "def bf16_mlm_loss(model, batch):\n"
        "    kind = 'cuda' if batch['input_ids'].is_cuda else 'cpu'\n"
        "    with torch.autocast(kind, dtype=torch.bfloat16):\n"
        "        hidden = model(batch['input_ids'], batch.get('token_type_ids'),\n"
        "                       batch.get('attention_mask'))\n"
        "        logits = model.mlm_logits(hidden)\n"
        "    return F.cross_entropy(logits.to(torch.float32).flatten(0, 1),\n"
        "                           batch['labels'].flatten(), ignore_index=-100)\n",
        # the loss under autocast too, which runs cross_entropy in float32 by itself
        "def bf16_mlm_loss(model, batch):\n"
        "    ids, labels = batch['input_ids'], batch['labels']\n"
        "    with torch.autocast(ids.device.type, dtype=torch.bfloat16):\n"
        "        hidden = model(ids, batch.get('token_type_ids'), batch.get('attention_mask'))\n"
        "        logits = model.mlm_logits(hidden[labels != -100])\n"
        "        return F.cross_entropy(logits, labels[labels != -100])\n",
    ],
    "12.mlm_dataloader": [
        # an explicit RandomSampler that owns the seeded generator
        "def mlm_dataloader(examples, collator, batch_size, seed):\n"
        "    sampler = torch.utils.data.RandomSampler(examples,\n"
        "                                             generator=torch.Generator().manual_seed(seed))\n"
        "    def to_tensors(items):\n"
        "        batch = collator(list(items))\n"
        "        return {k: torch.as_tensor(v, dtype=torch.int64) for k, v in batch.items()}\n"
        "    return torch.utils.data.DataLoader(examples, batch_size=batch_size, sampler=sampler,\n"
        "                                       collate_fn=to_tensors, drop_last=False)\n",
    ],
    "12.numpy_weights": [
        # from the state dict, cloned on the device before leaving it
        "def numpy_weights(model):\n"
        "    state = model.state_dict()\n"
        "    out = {}\n"
        "    for ours, (theirs, transposed) in torch_names(model.config).items():\n"
        "        t = state[theirs].detach().clone().to('cpu', torch.float32)\n"
        "        out[ours] = np.ascontiguousarray((t.t() if transposed else t).numpy())\n"
        "    return out\n",
    ],
}
