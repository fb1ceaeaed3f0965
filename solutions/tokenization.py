"""Lesson 04 - Tokenization (reference solutions).

Every function here is an exercise in ``lessons/04_tokenization.ipynb``, with
the same signature and docstring. Together they turn text into the arrays a
BERT model reads: BERT's basic tokenizer (clean-up, CJK splitting, lower
case, accent stripping, punctuation), WordPiece, a WordPiece vocabulary
trained by byte-pair merges, Chinese word segmentation by maximum matching,
and the encoding of sentence pairs into padded batches.
"""

import string
import unicodedata

import numpy as np


def clean_text(text):
    """Remove the characters BERT ignores and turn every kind of space into " ".

    Dropped: the replacement character U+FFFD and every character of a Unicode
    "other" category (``unicodedata.category(c)`` starts with "C": control
    characters such as NUL, format characters such as the zero-width space
    U+200B, private-use and unassigned code points), except tab, newline and
    carriage return. Those three and every space separator (category "Zs",
    such as the no-break space U+00A0 and the ideographic space U+3000) become
    a plain space " ". Every other character is kept as it is.

    Args:
        text: str.

    Returns:
        str: the cleaned text, never longer than ``text``.
    """
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\t\n\r" or category == "Zs":
            kept.append(" ")
        elif category.startswith("C") or char == "\ufffd":
            continue
        else:
            kept.append(char)
    return "".join(kept)


def strip_accents(text):
    """Remove accents: "Café Über" -> "Cafe Uber".

    The text is first decomposed (Unicode normalization form NFD), which
    writes an accented letter as its base letter followed by combining marks
    ("é" -> "e" + U+0301); then the non-spacing marks (category "Mn") are
    dropped. Letters without a decomposition (CJK, "ß", "ø") are unchanged.

    Args:
        text: str.

    Returns:
        str: the text without its non-spacing marks.
    """
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def isolate_cjk_chars(text):
    """Put a space before and after every CJK ideograph, so each becomes its own word.

    The ideographs are the code points of BERT's CJK blocks: U+4E00-U+9FFF,
    U+3400-U+4DBF, U+20000-U+2A6DF, U+2A700-U+2B73F, U+2B740-U+2B81F,
    U+2B820-U+2CEAF, U+F900-U+FAFF and U+2F800-U+2FA1F. Japanese kana, Korean
    Hangul and CJK punctuation (such as "。") are not in them and are left
    alone.

    Args:
        text: str.

    Returns:
        str: ``text`` with " " + char + " " in place of every CJK ideograph.
    """
    cjk_blocks = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                  (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    pieces = []
    for char in text:
        if any(low <= ord(char) <= high for low, high in cjk_blocks):
            pieces.append(f" {char} ")
        else:
            pieces.append(char)
    return "".join(pieces)


def basic_tokenize(text):
    """BERT's basic tokenizer (uncased): clean, split CJK, lower-case, strip accents, split punctuation.

    Steps, in order:
    1. ``clean_text``, then ``isolate_cjk_chars``;
    2. split on whitespace (``str.split()``);
    3. lower-case each word, then ``strip_accents``;
    4. split each word around punctuation: every punctuation character
       becomes a token of its own. Punctuation means an ASCII punctuation
       character (``string.punctuation``, which includes "$", "+", "^" and
       "~") or any character of a Unicode punctuation category ("P...", such
       as "«", "—", "。" and "，").

    Args:
        text: str.

    Returns:
        list of str: the tokens, none empty, in order.
    """
    text = isolate_cjk_chars(clean_text(text))
    tokens = []
    for word in text.split():
        word = strip_accents(word.lower())
        current = ""                              # the characters since the last punctuation
        for char in word:
            if char in string.punctuation or unicodedata.category(char).startswith("P"):
                if current:
                    tokens.append(current)
                tokens.append(char)
                current = ""
            else:
                current += char
        if current:
            tokens.append(current)
    return tokens


def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):
    """Split one word into WordPiece tokens by greedy longest-match-first.

    From the start of the word, take the longest prefix that is in the
    vocabulary; then, from where it ended, the longest piece that is in the
    vocabulary *with the continuation mark* "##" in front; and so on to the
    end: "unaffable" -> ["un", "##aff", "##able"]. If at some point no piece
    matches (not even a single character), the whole word becomes
    ``[unk_token]``. A word longer than ``max_chars`` characters is
    ``[unk_token]`` without trying.

    Args:
        word: str, one word without spaces (a token of ``basic_tokenize``).
        vocab: the vocabulary: a dict token -> id, or a set of tokens
            (anything that supports ``token in vocab``).
        unk_token: str, the token for a word that cannot be split.
        max_chars: int, the longest word that is split at all.

    Returns:
        list of str: the pieces (the first without "##", the others with it),
        or ``[unk_token]``; ``[]`` for an empty word.
    """
    if len(word) > max_chars:
        return [unk_token]
    pieces = []
    start = 0
    while start < len(word):
        for end in range(len(word), start, -1):           # the longest candidate first
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:                                              # no piece matched
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def bert_tokenize(text, vocab):
    """BERT's whole tokenizer: ``basic_tokenize``, then ``wordpiece_tokenize`` on every word.

    Args:
        text: str.
        vocab: dict token -> id (or a set of tokens) holding "[UNK]".

    Returns:
        list of str: the WordPiece tokens of the text, in order.
    """
    return [piece for word in basic_tokenize(text) for piece in wordpiece_tokenize(word, vocab)]


def merge_pair(symbols, pair):
    """Replace every occurrence of ``pair`` in a list of symbols by the merged symbol.

    Symbols after the first carry the continuation mark "##", so the merged
    symbol is the first symbol followed by the second *without* its "##":
    ("l", "##o") -> "lo", ("##o", "##w") -> "##ow". The list is scanned from
    left to right and a symbol is used in one merge at most:
    ["a", "##a", "##a"] with ("##a", "##a") gives ["a", "##aa"].

    Args:
        symbols: list of str, the current pieces of one word.
        pair: tuple (str, str), the two adjacent symbols to merge.

    Returns:
        list of str: a new list (``symbols`` is not changed).
    """
    first, second = pair
    merged = first + second[2:]                   # drop the "##" of the second symbol
    out = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def bpe_merges(word_counts, num_merges):
    """Learn byte-pair-encoding merges with WordPiece's "##" marks.

    Every word starts as its characters, all but the first marked "##":
    "low" -> ["l", "##o", "##w"]. Then, ``num_merges`` times: count every
    pair of adjacent symbols over all words, each word weighted by its count;
    take the most frequent pair (on a tie, the smallest pair in Python's
    order for tuples of strings, so the result never depends on the order of
    the dict); merge it in every word (``merge_pair``); record it. Stop
    early when no word has two symbols left.

    Args:
        word_counts: dict word (str, non-empty) -> count (int > 0).
        num_merges: int >= 0, the most merges to learn.

    Returns:
        list of (str, str) tuples: the merges, in the order they were learned.
    """
    splits = {word: [word[0]] + ["##" + char for char in word[1:]] for word in word_counts}
    merges = []
    for _ in range(num_merges):
        pair_counts = {}
        for word, symbols in splits.items():
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] = pair_counts.get(pair, 0) + word_counts[word]
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merges.append(best)
        splits = {word: merge_pair(symbols, best) for word, symbols in splits.items()}
    return merges


def apply_bpe(word, merges):
    """Split a word with learned merges: start from its characters, apply every merge in order.

    Args:
        word: str.
        merges: list of (str, str) tuples, as ``bpe_merges`` returns them.

    Returns:
        list of str: the pieces, all but the first marked "##"; ``[]`` for an
        empty word.
    """
    if not word:
        return []
    symbols = [word[0]] + ["##" + char for char in word[1:]]
    for pair in merges:
        symbols = merge_pair(symbols, pair)
    return symbols


def forward_max_match(text, dictionary, max_word_len):
    """Chinese word segmentation by forward maximum matching.

    From the start of the text, take the longest dictionary word (at most
    ``max_word_len`` characters) that starts there; if none does, take one
    character. Continue after it until the end: with a dictionary holding
    我, 非常, 喜欢 and 人工智能, "我非常喜欢人工智能" -> 我 / 非常 / 喜欢 / 人工智能.

    Args:
        text: str, without spaces.
        dictionary: a set of words, or a dict word -> frequency (anything
            that supports ``word in dictionary``).
        max_word_len: int >= 1, the longest word to look for.

    Returns:
        list of str: the words, which joined give back ``text``.
    """
    words = []
    start = 0
    while start < len(text):
        for end in range(min(len(text), start + max_word_len), start, -1):
            if text[start:end] in dictionary or end == start + 1:
                break
        words.append(text[start:end])
        start = end
    return words


def backward_max_match(text, dictionary, max_word_len):
    """Chinese word segmentation by backward maximum matching.

    Like ``forward_max_match`` but from the end of the text: take the longest
    dictionary word (at most ``max_word_len`` characters) that *ends* there,
    or one character, and continue before it. The words are returned in
    reading order. The two directions can disagree: "研究生命的起源" is
    研究生 / 命 / 的 / 起源 forwards but 研究 / 生命 / 的 / 起源 backwards.

    Args:
        text: str, without spaces.
        dictionary: a set of words, or a dict word -> frequency.
        max_word_len: int >= 1, the longest word to look for.

    Returns:
        list of str: the words in reading order, which joined give back ``text``.
    """
    words = []
    end = len(text)
    while end > 0:
        for start in range(max(0, end - max_word_len), end):
            if text[start:end] in dictionary or start == end - 1:
                break
        words.append(text[start:end])
        end = start
    return words[::-1]


def encode_pair(tokens_a, tokens_b, vocab, max_length=None):
    """Encode one or two token sequences as BERT's input: [CLS] A [SEP] (B [SEP]).

    Truncation ("longest first", Hugging Face's default): when the tokens do
    not fit in ``max_length`` with the special tokens, the longer sequence is
    cut first, from its end. With ``room = max_length - 3``, the shorter one
    (A on a tie) keeps ``min(its length, room // 2)`` tokens and the other the
    rest of the room: only the longer is cut when the shorter fits in half,
    and both share the room equally when neither does. A single sequence keeps
    its first ``max_length - 2`` tokens.

    token_type_ids are 0 for [CLS], A and the first [SEP], and 1 for B and
    its [SEP]. Nothing is padded, so the attention mask is all ones.

    Args:
        tokens_a: list of str, tokens that are all in ``vocab``.
        tokens_b: list of str, or None for a single sequence.
        vocab: dict token -> id, holding "[CLS]" and "[SEP]".
        max_length: int, the longest encoding (at least 3 for a pair, 2 for a
            single sequence), or None for no truncation.

    Returns:
        dict with "input_ids", "token_type_ids" and "attention_mask": int64
        arrays of shape (T,), T <= max_length.
    """
    if max_length is not None:
        if tokens_b is None:
            tokens_a = tokens_a[:max_length - 2]
        elif len(tokens_a) + len(tokens_b) > max_length - 3:
            room = max_length - 3
            if len(tokens_a) <= len(tokens_b):
                keep_a = min(len(tokens_a), room // 2)
                keep_b = room - keep_a
            else:
                keep_b = min(len(tokens_b), room // 2)
                keep_a = room - keep_b
            tokens_a, tokens_b = tokens_a[:keep_a], tokens_b[:keep_b]
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    token_types = [0] * len(tokens)
    if tokens_b is not None:
        tokens += tokens_b + ["[SEP]"]
        token_types += [1] * (len(tokens_b) + 1)
    return {"input_ids": np.array([vocab[token] for token in tokens], dtype=np.int64),
            "token_type_ids": np.array(token_types, dtype=np.int64),
            "attention_mask": np.ones(len(tokens), dtype=np.int64)}


def pad_batch(sequences, pad_id, max_length=None):
    """Pad id sequences of different lengths on the right into one batch, with its mask.

    Args:
        sequences: list of B sequences of ints (lists or 1-D int arrays),
            possibly empty.
        pad_id: int, the id of "[PAD]".
        max_length: int, the length to pad every sequence to (at least the
            longest one's), or None for the longest sequence's length.

    Returns:
        (input_ids, attention_mask): two int64 arrays of shape (B, T); row b
        holds sequence b followed by ``pad_id``s, and its mask is 1 on the
        sequence's tokens and 0 on the padding.
    """
    length = max((len(seq) for seq in sequences), default=0) if max_length is None else max_length
    input_ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        input_ids[row, :len(seq)] = seq
        attention_mask[row, :len(seq)] = 1
    return input_ids, attention_mask
