"""Correct solutions for lesson 13, written differently from the reference."""

ALTERNATIVES = {
    "13.mean_pool": [
        # einsum over the tokens, the count clamped with np.clip
        "def mean_pool(hidden, attention_mask):\n"
        "    mask = attention_mask.astype(hidden.dtype)\n"
        "    total = np.einsum('btd,bt->bd', hidden, mask)\n"
        "    count = np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)\n"
        "    return (total / count).astype(hidden.dtype)\n",
        # a loop over the rows, slicing off the padding (right-padded masks)
        "def mean_pool(hidden, attention_mask):\n"
        "    out = np.zeros((hidden.shape[0], hidden.shape[2]), dtype=hidden.dtype)\n"
        "    for b in range(hidden.shape[0]):\n"
        "        real = hidden[b][attention_mask[b] == 1]\n"
        "        if len(real):\n"
        "            out[b] = real.mean(axis=0)\n"
        "    return out\n",
    ],
    "13.l2_normalize": [
        "def l2_normalize(x, eps=1e-12):\n"
        "    norm = np.linalg.norm(x, axis=-1, keepdims=True)\n"
        "    return x / np.maximum(norm, eps)\n",
    ],
    "13.cosine_similarity": [
        # the dot products divided by the outer product of the norms (floored: a zero row
        # gives cosines of 0)
        "def cosine_similarity(a, b):\n"
        "    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]\n"
        "    return (a @ b.T) / np.maximum(norms, 1e-12)\n",
    ],
    "13.sentence_embeddings": [
        # the mask as floats, the mean and the norm written out
        "def sentence_embeddings(params, config, input_ids, attention_mask):\n"
        "    hidden, _ = bert_forward(params, config, input_ids, None, attention_mask)\n"
        "    m = attention_mask[..., None].astype(hidden.dtype)\n"
        "    mean = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)\n"
        "    return mean / np.linalg.norm(mean, axis=1, keepdims=True)\n",
    ],
    "13.semantic_search": [
        # a sort of (-score, index) pairs, one query at a time
        "def semantic_search(query_embeddings, corpus_embeddings, k):\n"
        "    scores = cosine_similarity(query_embeddings, corpus_embeddings)\n"
        "    indices = np.array([np.lexsort((np.arange(len(row)), -row))[:k] for row in scores])\n"
        "    return indices, np.take_along_axis(scores, indices, axis=1)\n",
    ],
    "13.contrastive_loss": [
        # the cross-entropy from logsumexp by hand, the gradient through the probabilities
        "def contrastive_loss(anchors, candidates, scale=20.0):\n"
        "    n = len(anchors)\n"
        "    s = scale * (anchors @ candidates.T)\n"
        "    top = s.max(axis=1, keepdims=True)\n"
        "    lse = top[:, 0] + np.log(np.exp(s - top).sum(axis=1))\n"
        "    loss = np.mean(lse - np.diag(s[:, :n]))\n"
        "    p = np.exp(s - lse[:, None])\n"
        "    p[:, :n] -= np.eye(n)\n"
        "    g = p * (scale / n)\n"
        "    return loss, g @ candidates, g.T @ anchors\n",
    ],
}
