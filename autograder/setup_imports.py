"""The imports of each lesson's first notebook cell, for the grader (``Lesson.prelude``).

Written by ``scripts/sync_setup_imports.py`` from ``lessons/*.ipynb``; do not edit by hand.
"""

SETUP_IMPORTS = {
    '00': (
        'import math\n'
        'import numpy as np\n'
    ),
    '01': (
        'import math\n'
        'import numpy as np\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '02': (
        'import math\n'
        'import numpy as np\n'
        'from solutions.losses import cross_entropy, cross_entropy_grad, softmax\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '03': (
        'import math\n'
        'import time\n'
        'import numpy as np\n'
        'from scipy.special import erf\n'
        'from solutions.data import load_digits\n'
        'from solutions.layers import array_module\n'
        'from solutions.losses import cross_entropy, cross_entropy_grad, softmax\n'
        'from solutions.optimizers import AdamW, clip_grad_norm, scheduled_lr\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '04': (
        'import math\n'
        'import string\n'
        'import unicodedata\n'
        'from collections import Counter\n'
        'import numpy as np\n'
        'from solutions.data import MissingSource, load_bert_vocab, load_course_text, load_jieba_dictionary\n'
    ),
    '05': (
        'import math\n'
        'import time\n'
        'import numpy as np\n'
        'from solutions.data import MissingSource\n'
        'from solutions.losses import softmax\n'
        'from solutions.pretrained import load_minilm\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '06': (
        'import math\n'
        'import time\n'
        'import numpy as np\n'
        'from scipy.special import erf\n'
        'from solutions.attention import multi_head_attention_backward, multi_head_attention_forward, padding_mask\n'
        'from solutions.layers import Module, dropout_backward, dropout_forward, gelu_backward, gelu_forward, layernorm_backward, layernorm_forward, linear_backward, linear_forward\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '07': (
        'import math\n'
        'import time\n'
        'from dataclasses import replace\n'
        'import numpy as np\n'
        'from solutions.attention import padding_mask\n'
        'from solutions.bert import BertConfig, classifier_backward, classifier_forward, mlm_loss_and_grads, to_hf_state_dict\n'
        'from solutions.layers import dropout_backward, dropout_forward, embedding_backward, gelu_backward, gelu_forward, layernorm_backward, layernorm_forward, linear_backward, linear_forward\n'
        'from solutions.losses import cross_entropy_grad, masked_lm_loss\n'
        'from solutions.optimizers import AdamW\n'
        'from solutions.transformer import encoder_block_backward, encoder_block_forward, init_encoder_block\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '08': (
        'import math\n'
        'from collections import Counter, defaultdict\n'
        'import numpy as np\n'
        'from solutions.corpora import generate_grammar_corpus, grammar_vocabulary, grammatical_choices, word_category\n'
        'from solutions.losses import masked_lm_loss\n'
        'from solutions.tokenization import pad_batch\n'
    ),
    '09': (
        'import json\n'
        'import math\n'
        'import os\n'
        'import tempfile\n'
        'from pathlib import Path\n'
        'import numpy as np\n'
        'from solutions.bert import BertConfig, count_parameters, init_bert, mlm_loss_and_grads\n'
        'from solutions.corpora import generate_grammar_examples\n'
        'from solutions.losses import cross_entropy\n'
        'from solutions.objectives import MLMCollator\n'
        'from solutions.optimizers import AdamW, clip_grad_norm, scheduled_lr\n'
        'from solutions.pretrained import read_safetensors, read_safetensors_header\n'
        'from solutions.pretraining import MASK, PAD, SPECIAL_IDS, Trainer, TrainingArguments, encode_words, grammar_probes, grammar_tokens, load_pretrained, make_param_groups, masked_eval_batches, mlm_predictor, plot_curves, unigram_counts, unigram_predictor\n'
    ),
    '10': (
        'import os\n'
        'import tempfile\n'
        'import time\n'
        'import numpy as np\n'
        'from solutions.bert import BertConfig, classification_loss_and_grads, count_parameters, init_bert\n'
        'from solutions.corpora import CACHE_DIR, sentiment_oracle\n'
        'from solutions.data import MissingSource\n'
        'from solutions.finetuning import PAD, attention_maps, bag_of_words, classifier_logits, finetune, polarity_probe, sentiment_task, train_bag_of_words, with_pretrained_encoder\n'
        'from solutions.losses import softmax\n'
        'from solutions.objectives import MLMCollator\n'
        'from solutions.pretraining import Trainer, TrainingArguments, load_pretrained\n'
        'from solutions.tokenization import pad_batch\n'
    ),
    '11': (
        'import os\n'
        'import time\n'
        'import numpy as np\n'
        'from solutions.bert import BertConfig, init_bert, mlm_loss_and_grads\n'
        'from solutions.gpu import BERT_BASE, MINI_BERT, cuda_available, default_xp, get_array_module, matmul_gflops, matmul_seconds, memory_pool_bytes, seconds_per_call, speedup_table, synchronize, to_host, tokens_per_second, transfer_seconds\n'
        'from solutions.optimizers import AdamW\n'
    ),
    '12': (
        'import math\n'
        'import os\n'
        'import statistics\n'
        'import tempfile\n'
        'import time\n'
        'import numpy as np\n'
        'import torch\n'
        'import torch.nn.functional as F\n'
        'from torch import nn\n'
        'from solutions.attention import attention_backward, attention_forward, padding_mask\n'
        'from solutions.bert import BertConfig, init_bert, mlm_logits, mlm_loss_and_grads\n'
        'from solutions.corpora import generate_grammar_examples\n'
        'from solutions.layers import gelu_backward, gelu_forward, layernorm_backward, layernorm_forward\n'
        'from solutions.objectives import MLMCollator\n'
        'from solutions.optimizers import AdamW\n'
        'from solutions.pretraining import MASK, PAD, SPECIAL_IDS, encode_words, grammar_tokens, load_pretrained, save_pretrained\n'
        'from solutions.torch_bert import TorchBert, make_train_step, torch_names\n'
    ),
    '13': (
        'import importlib.util\n'
        'import os\n'
        'import time\n'
        'import numpy as np\n'
        'import solutions.transformer\n'
        'from solutions.bert import bert_forward, hf_names, init_bert\n'
        'from solutions.data import MissingSource, load_course_text\n'
        'from solutions.finetuning import bag_of_words, sentiment_task, train_bag_of_words\n'
        'from solutions.layers import gelu_tanh_forward\n'
        'from solutions.losses import log_softmax, softmax\n'
        'from solutions.pretrained import minilm_dir\n'
        'from solutions.sentence_embeddings import embed_texts, load_minilm_bert, tokenize_batch\n'
        'from solutions.tokenization import bert_tokenize\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '14': (
        'import importlib.util\n'
        'import os\n'
        'import time\n'
        'import numpy as np\n'
        'from solutions.bert import BertConfig, count_parameters, init_bert, mlm_loss_and_grads\n'
        'from solutions.scaling import BYTES_PER_PARAMETER, data_parallel_run, single_process_run\n'
    ),
    '15': (
        'import importlib.util\n'
        'import numpy as np\n'
        'from solutions.data import MissingSource, load_digits\n'
        'from solutions.optimizers import logreg_loss_and_grad\n'
        'from solutions.responsible import mlp_forward, mlp_input_gradient, noise_multiplier_for, rdp_epsilon, softmax_regression_loss_and_grads, softmax_regression_per_example_grads, train_mlp\n'
        'from solutions.sentence_embeddings import embed_texts, load_minilm_bert\n'
    ),
    '16': (
        'import itertools\n'
        'import numpy as np\n'
        'from solutions.classic import ALARM_NETWORK, BINARY_INCREMENT, BUSY_BEAVER_2, fit_tree, tree_size, truncate_tree\n'
        'from solutions.data import MissingSource, load_digits\n'
    ),
    '17': (
        'import os\n'
        'import time\n'
        'import numpy as np\n'
        'from solutions.bert import BertConfig, bert_forward, init_bert\n'
        'from solutions.data import MissingSource\n'
        'from solutions.finetuning import sentiment_task, train_bag_of_words\n'
        'from solutions.lora import LORA_TARGETS, finetune, init_head, init_lora, merged_params, pooled_classifier_logits, pooled_classifier_loss_and_grads, predict\n'
        'from solutions.scaling import training_memory\n'
        'from solutions.sentence_embeddings import load_minilm_bert, mean_pool, tokenize_batch\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
    '18': (
        'import os\n'
        'import tempfile\n'
        'import time\n'
        'import numpy as np\n'
        'from solutions.attention import attention_forward, causal_mask, padding_mask\n'
        'from solutions.bert import BertConfig, bert_backward, bert_forward, embeddings_forward, init_bert, mlm_head_backward, mlm_head_forward, mlm_loss_and_grads\n'
        'from solutions.corpora import agreement_items, generate_grammar_examples\n'
        'from solutions.gpt import agreement_accuracy, decode_step, empty_cache, generate, generation_report, ids_to_sentence, next_token_logits\n'
        'from solutions.layers import layernorm_forward\n'
        'from solutions.losses import cross_entropy, cross_entropy_grad, softmax\n'
        'from solutions.objectives import CausalLMCollator\n'
        'from solutions.pretraining import CLS, PAD, SEP, Trainer, TrainingArguments, encode_words, grammar_tokens, plot_curves\n'
        'from solutions.transformer import encoder_block_forward\n'
        'from solutions.welcome import numerical_gradient, relative_error\n'
    ),
}
