"""Correct solutions for lesson 08, written differently from the reference."""

ALTERNATIVES = {
    "08.special_tokens_mask": [
        # one comparison per special id, OR-ed together
        "def special_tokens_mask(input_ids, special_ids):\n"
        "    mask = np.zeros(np.shape(input_ids), dtype=bool)\n"
        "    for special in special_ids:\n"
        "        mask |= input_ids == special\n"
        "    return mask\n",
        # broadcast against every special id at once
        "def special_tokens_mask(input_ids, special_ids):\n"
        "    ids = np.asarray(list(special_ids), dtype=np.int64)\n"
        "    return (np.asarray(input_ids)[..., None] == ids).any(axis=-1)\n",
    ],
    "08.mask_tokens": [
        # Hugging Face's NumPy version: Bernoulli draws with rng.binomial, the random share
        # scaled to the remaining probability
        "def mask_tokens(input_ids, special_mask, mask_token_id, vocab_size, rng, mlm_probability=0.15):\n"
        "    labels = input_ids.copy()\n"
        "    inputs = input_ids.copy()\n"
        "    probability = np.full(input_ids.shape, mlm_probability)\n"
        "    probability[special_mask] = 0.0\n"
        "    masked = rng.binomial(1, probability).astype(bool)\n"
        "    labels[~masked] = -100\n"
        "    replaced = rng.binomial(1, 0.8, size=labels.shape).astype(bool) & masked\n"
        "    inputs[replaced] = mask_token_id\n"
        "    random = rng.binomial(1, 0.1 / 0.2, size=labels.shape).astype(bool) & masked & ~replaced\n"
        "    words = rng.integers(vocab_size, size=labels.shape)\n"
        "    inputs[random] = words[random]\n"
        "    return inputs, labels\n",
        # draws only for the positions that can be chosen: one uniform splits 80/10/10, and
        # random ids avoid the [MASK] id (drawn from the other vocab_size - 1 ids)
        "def mask_tokens(input_ids, special_mask, mask_token_id, vocab_size, rng, mlm_probability=0.15):\n"
        "    inputs = np.array(input_ids, dtype=np.int64)\n"
        "    labels = np.full(inputs.shape, -100, dtype=np.int64)\n"
        "    rows, cols = np.nonzero(~special_mask)\n"
        "    chosen = rng.random(rows.size) < mlm_probability\n"
        "    rows, cols = rows[chosen], cols[chosen]\n"
        "    labels[rows, cols] = inputs[rows, cols]\n"
        "    u = rng.random(rows.size)\n"
        "    inputs[rows[u < 0.8], cols[u < 0.8]] = mask_token_id\n"
        "    swap = (u >= 0.8) & (u < 0.9)\n"
        "    words = rng.integers(0, vocab_size - 1, size=int(swap.sum()))\n"
        "    words[words >= mask_token_id] += 1\n"
        "    inputs[rows[swap], cols[swap]] = words\n"
        "    return inputs, labels\n",
        # a plain loop over the positions
        "def mask_tokens(input_ids, special_mask, mask_token_id, vocab_size, rng, mlm_probability=0.15):\n"
        "    inputs = input_ids.copy()\n"
        "    labels = np.full_like(input_ids, -100)\n"
        "    for b in range(input_ids.shape[0]):\n"
        "        for t in range(input_ids.shape[1]):\n"
        "            if special_mask[b, t] or rng.random() >= mlm_probability:\n"
        "                continue\n"
        "            labels[b, t] = input_ids[b, t]\n"
        "            u = rng.random()\n"
        "            if u < 0.8:\n"
        "                inputs[b, t] = mask_token_id\n"
        "            elif u < 0.9:\n"
        "                inputs[b, t] = rng.integers(vocab_size)\n"
        "    return inputs, labels\n",
    ],
    "08.mlm_collator": [
        # pads by hand and protects padding through the ids it wrote, not the mask
        "class MLMCollator:\n"
        "    def __init__(self, pad_id, mask_id, vocab_size, special_ids, mlm_probability=0.15, seed=0):\n"
        "        self.pad_id, self.mask_id, self.vocab_size = pad_id, mask_id, vocab_size\n"
        "        self.special_ids = set(int(i) for i in special_ids)\n"
        "        self.mlm_probability = mlm_probability\n"
        "        self.rng = np.random.default_rng(seed)\n"
        "\n"
        "    def __call__(self, sequences):\n"
        "        width = max(len(s) for s in sequences)\n"
        "        ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)\n"
        "        attention = np.zeros_like(ids)\n"
        "        for row, seq in enumerate(sequences):\n"
        "            ids[row, :len(seq)] = seq\n"
        "            attention[row, :len(seq)] = 1\n"
        "        special = np.isin(ids, sorted(self.special_ids)) | ~attention.astype(bool)\n"
        "        inputs, labels = mask_tokens(ids, special, self.mask_id, self.vocab_size, self.rng,\n"
        "                                     mlm_probability=self.mlm_probability)\n"
        "        return dict(input_ids=inputs, attention_mask=attention, labels=labels)\n",
    ],
    "08.causal_lm_batch": [
        "def causal_lm_batch(input_ids, attention_mask):\n"
        "    labels = input_ids[:, 1:].copy()\n"
        "    labels[np.asarray(attention_mask)[:, 1:] == 0] = -100\n"
        "    return input_ids[:, :-1], labels\n",
    ],
    "08.causal_lm_collator": [
        # pads by hand, shifts inline
        "class CausalLMCollator:\n"
        "    def __init__(self, pad_id):\n"
        "        self.pad_id = pad_id\n"
        "\n"
        "    def __call__(self, sequences):\n"
        "        width = max(len(s) for s in sequences)\n"
        "        ids = np.array([list(s) + [self.pad_id] * (width - len(s)) for s in sequences],\n"
        "                       dtype=np.int64)\n"
        "        real = np.array([[1] * len(s) + [0] * (width - len(s)) for s in sequences],\n"
        "                        dtype=np.int64)\n"
        "        labels = np.where(real[:, 1:] == 1, ids[:, 1:], -100)\n"
        "        return {'input_ids': ids[:, :-1], 'attention_mask': real[:, :-1], 'labels': labels}\n",
    ],
}
