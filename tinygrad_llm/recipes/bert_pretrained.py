"""Hugging Face BERT checkpoints (BertModel: all-MiniLM-L6-v2, bert-base-uncased, ...) in and out of HFBert.

    model = load_bert("path/to/model")             # config.json + model.safetensors (or a sharded index)
    tokenizer = load_bert_tokenizer("path/to/model")  # vocab.txt, and tokenizer_config.json's do_lower_case
    save_bert(model, "out/my-bert", tokenizer)      # BertModel.from_pretrained("out/my-bert") reads it

The names (a checkpoint saved from a BertFor... model carries a `bert.` prefix on each, which is dropped; its
heads, cls.* or classifier.*, are not part of a BertModel and are refused as unexpected):

    theirs (per layer: encoder.layer.i.)          ours (h.i.)
    embeddings.word_embeddings.weight              wte.weight          (and position_ -> wpe, token_type_ -> wtt)
    embeddings.LayerNorm.weight / .bias            ln_emb.weight / .bias
    attention.self.query.weight / .bias            attn.q_proj
    attention.self.key, attention.self.value       attn.kv_proj: key's rows first, then value's (one matmul)
    attention.output.dense                         attn.c_proj
    attention.output.LayerNorm                     ln_1
    intermediate.dense                             mlp.c_fc
    output.dense                                   mlp.c_proj
    output.LayerNorm                               ln_2
    pooler.dense                                   pooler              (optional: the model has one if the file does)
    embeddings.position_ids                        (none: a buffer of 0 .. max_len - 1 that old files carry; skipped)

Linear weights are (out, in) on both sides: no transposes. As load_pretrained does for GPT-2, everything is checked
before a model is built: config.json's fields that change the computation, its sizes against bounds, then every
tensor's name, shape and dtype from the files' headers; one error lists every problem, naming each tensor.
"""
import dataclasses
import json
import pathlib

import numpy as np
from safetensors.numpy import save_file

from .. import nn
from ..engine import backend
from ..models.hf_bert import HFBert, HFBertConfig
from ..text.wordpiece import WordPieceTokenizer
from .checkpoint import replace_atomically
from .pretrained import (
    CONFIG,
    FILE_DTYPES,
    MAX_LISTED,
    WEIGHTS,
    read_checked_config,
    read_json,
    read_tensor,
    read_weight_headers,
)

TOKENIZER_CONFIG = "tokenizer_config.json"
PREFIX = "bert."                       # what BertForMaskedLM, BertForSequenceClassification, ... put before each name
POSITION_IDS = "embeddings.position_ids"
# config.json's fields that change the computation, and the values HFBert computes (the first is BertConfig's
# default, which transformers assumes when a config leaves the field out)
FIXED = {
    "model_type": ("bert",),
    "hidden_act": ("gelu",),                          # transformers' "gelu" is the exact one, with erf
    "position_embedding_type": ("absolute",),
    "is_decoder": (False,),
    "add_cross_attention": (False,),
}
HF_SIZES = {"vocab_size": "vocab_size", "max_position_embeddings": "max_len", "num_hidden_layers": "n_layer",
            "num_attention_heads": "n_head", "hidden_size": "n_embd", "intermediate_size": "n_inner",
            "type_vocab_size": "type_vocab_size"}  # config.json's name -> HFBertConfig's
# far above any BERT (bert-large: 30522, 512, 24, 16, 1024, 4096, 2), far below what would exhaust memory: only
# the list of expected names (16 per layer) is made from them before the file's tensors have confirmed them
MAX_SIZES = {"vocab_size": 2 ** 20, "max_position_embeddings": 2 ** 20, "num_hidden_layers": 2 ** 10,
             "num_attention_heads": 2 ** 10, "hidden_size": 2 ** 16, "intermediate_size": 2 ** 18,
             "type_vocab_size": 2 ** 10}
LAYER = {"attention.self.query": "attn.q_proj", "attention.output.dense": "attn.c_proj",
         "attention.output.LayerNorm": "ln_1", "intermediate.dense": "mlp.c_fc", "output.dense": "mlp.c_proj",
         "output.LayerNorm": "ln_2"}  # per layer, theirs -> ours (key and value are the two halves of kv_proj)
EMBEDDINGS = {"embeddings.word_embeddings.weight": "wte.weight", "embeddings.position_embeddings.weight": "wpe.weight",
              "embeddings.token_type_embeddings.weight": "wtt.weight", "embeddings.LayerNorm.weight": "ln_emb.weight",
              "embeddings.LayerNorm.bias": "ln_emb.bias"}


@dataclasses.dataclass(frozen=True)
class Place:
    """Where one of their tensors goes in our model: the parameter, and the rows it fills (None: all of it)."""
    ours: str
    rows: slice = None


def bert_tensors(config):
    """{their name (no prefix): (shape, Place)} for every tensor of a BertModel of `config`."""
    C, H = config.n_embd, config.n_inner
    shapes = {"embeddings.word_embeddings.weight": (config.vocab_size, C),
              "embeddings.position_embeddings.weight": (config.max_len, C),
              "embeddings.token_type_embeddings.weight": (config.type_vocab_size, C),
              "embeddings.LayerNorm.weight": (C,), "embeddings.LayerNorm.bias": (C,)}
    plan = {name: (shape, Place(EMBEDDINGS[name])) for name, shape in shapes.items()}
    linear = {"attention.self.query": (C, C), "attention.output.dense": (C, C), "intermediate.dense": (H, C),
              "output.dense": (C, H)}  # (out, in)
    for i in range(config.n_layer):
        theirs, ours = f"encoder.layer.{i}.", f"h.{i}."
        for module, (n_out, n_in) in linear.items():
            plan[theirs + module + ".weight"] = ((n_out, n_in), Place(ours + LAYER[module] + ".weight"))
            plan[theirs + module + ".bias"] = ((n_out,), Place(ours + LAYER[module] + ".bias"))
        for module in ("attention.output.LayerNorm", "output.LayerNorm"):
            for kind in ("weight", "bias"):
                plan[f"{theirs}{module}.{kind}"] = ((C,), Place(f"{ours}{LAYER[module]}.{kind}"))
        for half, module in enumerate(("attention.self.key", "attention.self.value")):
            rows = slice(half * C, (half + 1) * C)
            plan[theirs + module + ".weight"] = ((C, C), Place(ours + "attn.kv_proj.weight", rows))
            plan[theirs + module + ".bias"] = ((C,), Place(ours + "attn.kv_proj.bias", rows))
    if config.pooler:
        plan["pooler.dense.weight"] = ((C, C), Place("pooler.weight"))
        plan["pooler.dense.bias"] = ((C,), Place("pooler.bias"))
    return plan


def load_bert(path, dtype=np.float32):
    """An HFBert holding the weights of the Hugging Face BERT directory `path`, in `dtype` (float32 or float64),
    with dropout 0. Raises, before building anything, when the directory does not hold exactly such a BERT."""
    directory = pathlib.Path(path)
    dtype = backend.check_float_dtype(dtype, "load_bert")
    hf = read_bert_config(directory / CONFIG)
    source, stored = read_weight_headers(directory)
    short = {}                         # their name without the prefix -> Stored
    problems = []
    for name, entry in stored.items():
        key = name.removeprefix(PREFIX)
        if key in short:
            problems.append(f"{name}: stored twice (as {short[key].name} too)")
        short[key] = entry
    config = HFBertConfig(**{ours: hf[theirs] for theirs, ours in HF_SIZES.items()},
                          layer_norm_eps=hf["layer_norm_eps"], pooler="pooler.dense.weight" in short)
    plan = bert_tensors(config)
    for key, entry in short.items():
        if key == POSITION_IDS:
            continue
        if key not in plan:
            problems.append(f"{entry.name}: unexpected tensor (not part of a BertModel with this config)")
        elif entry.shape != plan[key][0]:
            problems.append(f"{entry.name}: expected shape {plan[key][0]} in the file, got {entry.shape}")
        elif entry.dtype not in FILE_DTYPES:
            problems.append(f"{entry.name}: dtype {entry.dtype} in the file; expected a float type "
                            f"({', '.join(FILE_DTYPES)})")
    problems += [f"{key}: missing" for key in plan if key not in short]
    if problems:
        listed = problems[:MAX_LISTED] + ([f"... and {len(problems) - MAX_LISTED} more"]
                                          if len(problems) > MAX_LISTED else [])
        sizes = ", ".join(f"{theirs}={hf[theirs]}" for theirs in HF_SIZES)
        raise ValueError(f"{source} does not hold a BertModel with {sizes} (from {CONFIG}):\n  " + "\n  ".join(listed))
    with nn.skip_init():  # zeros, no random numbers drawn: every parameter is about to be read in
        model = HFBert(config).to(dtype)
    params = dict(model.named_parameters())
    for key, (_, place) in plan.items():
        # one tensor at a time, so memory holds the model plus one tensor, not two copies of the model
        target = params[place.ours].data
        target[... if place.rows is None else place.rows] = read_tensor(short[key]).astype(dtype, copy=False)
    return model.eval()


def read_bert_config(path):
    """config.json as a dict, after checking the fields HFBert hard-codes and the sizes' types and bounds."""
    hf = read_checked_config(path, FIXED, "BERT", "HFBert")
    for field, bound in MAX_SIZES.items():
        value = hf.get(field)
        if type(value) is not int or not 1 <= value <= bound:
            raise ValueError(f"{path}: {field} must be an integer from 1 to {bound}, got {value!r:.80}")
    hf = {**hf, "layer_norm_eps": hf.get("layer_norm_eps", 1e-12)}
    try:
        HFBertConfig(**{ours: hf[theirs] for theirs, ours in HF_SIZES.items()}, layer_norm_eps=hf["layer_norm_eps"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return hf


def load_bert_tokenizer(path):
    """The WordPiece tokenizer of a BERT directory: its vocab.txt, uncased unless tokenizer_config.json says
    do_lower_case false (BertTokenizer's default is uncased too)."""
    directory = pathlib.Path(path)
    settings = read_json(directory / TOKENIZER_CONFIG) if (directory / TOKENIZER_CONFIG).is_file() else {}
    lowercase = settings.get("do_lower_case", True)
    if not isinstance(lowercase, bool):
        raise ValueError(f"{directory / TOKENIZER_CONFIG}: do_lower_case must be true or false, got {lowercase!r:.40}")
    return WordPieceTokenizer.load(directory, lowercase=lowercase)


def save_bert(model, path, tokenizer=None):
    """Write `model` (an HFBert) to the directory `path` as transformers saves a BertModel: model.safetensors
    (their names; key and value split apart again) and config.json; with a tokenizer, also vocab.txt and
    tokenizer_config.json. Each file is replaced atomically, config.json last: it appears only once its weights are
    there."""
    config = model.config
    directory = pathlib.Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: t.numpy() for name, t in model.state_dict().items()}
    tensors = {name: np.ascontiguousarray(state[place.ours] if place.rows is None else state[place.ours][place.rows])
               for name, (_, place) in bert_tensors(config).items()}
    hf_config = {
        "model_type": "bert", "architectures": ["BertModel"], "hidden_act": "gelu",
        **{theirs: getattr(config, ours) for theirs, ours in HF_SIZES.items()},
        "layer_norm_eps": config.layer_norm_eps, "position_embedding_type": "absolute",
        "hidden_dropout_prob": config.dropout, "attention_probs_dropout_prob": config.dropout,
        "initializer_range": 0.02, "pad_token_id": 0 if tokenizer is None else tokenizer.pad_id,
        "dtype": str(tensors["embeddings.word_embeddings.weight"].dtype),
    }
    # "format": "pt" tells transformers the tensors are PyTorch-layout weights it can load
    replace_atomically(directory / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    if tokenizer is not None:
        tokenizer.save(directory)
        settings = {"tokenizer_class": "BertTokenizer", "do_lower_case": tokenizer.lowercase,
                    "model_max_length": config.max_len}
        replace_atomically(directory / TOKENIZER_CONFIG,
                           lambda tmp: pathlib.Path(tmp).write_text(json.dumps(settings, indent=2) + "\n"))
    replace_atomically(directory / CONFIG,
                       lambda tmp: pathlib.Path(tmp).write_text(json.dumps(hf_config, indent=2) + "\n"))
