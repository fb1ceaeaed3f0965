"""Correct solutions for lesson 04, written differently from the reference."""

ALTERNATIVES = {
    "04.clean_text": [
        "def clean_text(text):\n"
        "    def convert(c):\n"
        "        if c in '\\t\\n\\r' or unicodedata.category(c) == 'Zs':\n"
        "            return ' '\n"
        "        if unicodedata.category(c)[0] == 'C' or ord(c) == 0xFFFD:\n"
        "            return ''\n"
        "        return c\n"
        "    return ''.join(map(convert, text))\n",
    ],
    "04.strip_accents": [
        "def strip_accents(text):\n"
        "    out = []\n"
        "    for c in unicodedata.normalize('NFD', text):\n"
        "        if unicodedata.category(c) == 'Mn':\n"
        "            continue\n"
        "        out.append(c)\n"
        "    return ''.join(out)\n",
    ],
    "04.isolate_cjk_chars": [
        "import re\n"
        "CJK = re.compile('([\\\\u4e00-\\\\u9fff\\\\u3400-\\\\u4dbf\\\\U00020000-\\\\U0002a6df'\n"
        "                 '\\\\U0002a700-\\\\U0002b73f\\\\U0002b740-\\\\U0002b81f\\\\U0002b820-\\\\U0002ceaf'\n"
        "                 '\\\\uf900-\\\\ufaff\\\\U0002f800-\\\\U0002fa1f])')\n"
        "def isolate_cjk_chars(text):\n"
        "    return CJK.sub(r' \\1 ', text)\n",
    ],
    "04.basic_tokenize": [
        # lower-case and strip accents on the whole text, then pad punctuation with spaces
        "def basic_tokenize(text):\n"
        "    def is_punct(c):\n"
        "        return c in string.punctuation or unicodedata.category(c)[0] == 'P'\n"
        "    text = strip_accents(isolate_cjk_chars(clean_text(text)).lower())\n"
        "    return ''.join(f' {c} ' if is_punct(c) else c for c in text).split()\n",
    ],
    "04.wordpiece_tokenize": [
        # recursive: the longest first piece, then the rest of the word
        "def wordpiece_tokenize(word, vocab, unk_token='[UNK]', max_chars=100):\n"
        "    if len(word) > max_chars:\n"
        "        return [unk_token]\n"
        "    def split(rest, prefix):\n"
        "        if not rest:\n"
        "            return []\n"
        "        for n in range(len(rest), 0, -1):\n"
        "            if prefix + rest[:n] in vocab:\n"
        "                tail = split(rest[n:], '##')\n"
        "                return None if tail is None else [prefix + rest[:n]] + tail\n"
        "        return None\n"
        "    pieces = split(word, '')\n"
        "    return [unk_token] if pieces is None else pieces\n",
    ],
    "04.bert_tokenize": [
        "def bert_tokenize(text, vocab):\n"
        "    out = []\n"
        "    for word in basic_tokenize(text):\n"
        "        out.extend(wordpiece_tokenize(word, vocab))\n"
        "    return out\n",
    ],
    "04.merge_pair": [
        "def merge_pair(symbols, pair):\n"
        "    out, skip = [], False\n"
        "    for i, s in enumerate(symbols):\n"
        "        if skip:\n"
        "            skip = False\n"
        "            continue\n"
        "        if tuple(symbols[i:i + 2]) == tuple(pair):\n"
        "            out.append(pair[0] + pair[1].removeprefix('##'))\n"
        "            skip = True\n"
        "        else:\n"
        "            out.append(s)\n"
        "    return out\n",
    ],
    "04.bpe_merges": [
        "from collections import Counter\n"
        "def bpe_merges(word_counts, num_merges):\n"
        "    words = [(tuple([w[0]] + ['##' + c for c in w[1:]]), n) for w, n in word_counts.items()]\n"
        "    merges = []\n"
        "    while len(merges) < num_merges:\n"
        "        counts = Counter()\n"
        "        for symbols, n in words:\n"
        "            for i in range(len(symbols) - 1):\n"
        "                counts[symbols[i], symbols[i + 1]] += n\n"
        "        if not counts:\n"
        "            break\n"
        "        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]\n"
        "        merges.append(best)\n"
        "        words = [(tuple(merge_pair(list(s), best)), n) for s, n in words]\n"
        "    return merges\n",
    ],
    "04.apply_bpe": [
        # GPT-2's way: repeatedly merge the present pair that was learned first
        "def apply_bpe(word, merges):\n"
        "    if not word:\n"
        "        return []\n"
        "    rank = {tuple(p): i for i, p in reversed(list(enumerate(merges)))}\n"
        "    symbols = [word[0]] + ['##' + c for c in word[1:]]\n"
        "    while True:\n"
        "        present = [p for p in zip(symbols, symbols[1:]) if p in rank]\n"
        "        if not present:\n"
        "            return symbols\n"
        "        symbols = merge_pair(symbols, min(present, key=rank.get))\n",
    ],
    "04.forward_max_match": [
        "def forward_max_match(text, dictionary, max_word_len):\n"
        "    words = []\n"
        "    while text:\n"
        "        candidates = [text[:n] for n in range(2, min(max_word_len, len(text)) + 1)\n"
        "                      if text[:n] in dictionary]\n"
        "        word = candidates[-1] if candidates else text[0]\n"
        "        words.append(word)\n"
        "        text = text[len(word):]\n"
        "    return words\n",
    ],
    "04.backward_max_match": [
        # backward matching is forward matching on the reversed text and reversed words
        "def backward_max_match(text, dictionary, max_word_len):\n"
        "    reversed_words = {w[::-1] for w in dictionary}\n"
        "    rest, found = text[::-1], []\n"
        "    while rest:\n"
        "        n = min(max_word_len, len(rest))\n"
        "        while n > 1 and rest[:n] not in reversed_words:\n"
        "            n -= 1\n"
        "        found.append(rest[:n][::-1])\n"
        "        rest = rest[n:]\n"
        "    return found[::-1]\n",
    ],
    "04.encode_pair": [
        # one token at a time from the longer sequence; a tie costs the one that started shorter
        "def encode_pair(tokens_a, tokens_b, vocab, max_length=None):\n"
        "    a, b = list(tokens_a), None if tokens_b is None else list(tokens_b)\n"
        "    if max_length is not None and b is None:\n"
        "        a = a[:max_length - 2]\n"
        "    elif max_length is not None:\n"
        "        a_started_shorter = len(a) <= len(b)\n"
        "        while len(a) + len(b) > max_length - 3:\n"
        "            if len(a) > len(b) or (len(a) == len(b) and a_started_shorter):\n"
        "                a.pop()\n"
        "            else:\n"
        "                b.pop()\n"
        "    ids = [vocab['[CLS]']] + [vocab[t] for t in a] + [vocab['[SEP]']]\n"
        "    types = [0] * len(ids)\n"
        "    if b is not None:\n"
        "        ids += [vocab[t] for t in b] + [vocab['[SEP]']]\n"
        "        types += [1] * (len(b) + 1)\n"
        "    return {'input_ids': ids, 'token_type_ids': types, 'attention_mask': [1] * len(ids)}\n",
    ],
    "04.pad_batch": [
        "def pad_batch(sequences, pad_id, max_length=None):\n"
        "    lengths = np.array([len(s) for s in sequences], dtype=np.int64)\n"
        "    T = max_length if max_length is not None else int(lengths.max(initial=0))\n"
        "    rows = [list(s) + [pad_id] * (T - len(s)) for s in sequences]\n"
        "    ids = np.array(rows, dtype=np.int64).reshape(len(sequences), T)\n"
        "    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)\n"
        "    return ids, mask\n",
    ],
}
