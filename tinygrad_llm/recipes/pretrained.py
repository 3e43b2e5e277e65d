"""Hugging Face GPT-2 checkpoints: load OpenAI's GPT-2 (gpt2 … gpt2-xl) into our GPT, and save ours for transformers.

    model = load_pretrained("path/to/gpt2")       # a directory holding config.json and model.safetensors
    save_pretrained(model, "out/my-gpt2")           # GPT2LMHeadModel.from_pretrained("out/my-gpt2") reads it

Our parameter names are nanoGPT's, which are GPT-2's, so the mapping is short:

    theirs                                   ours
    transformer.wte.weight  (or wte.weight)  transformer.wte.weight              same array
    transformer.h.0.ln_1.bias   ...          transformer.h.0.ln_1.bias           same array
    transformer.h.0.attn.c_attn.weight       transformer.h.0.attn.c_attn.weight  TRANSPOSED (so are attn.c_proj,
                                                                                 mlp.c_fc, mlp.c_proj weights)
    lm_head.weight  (optional)               (tied to transformer.wte.weight)
    h.0.attn.bias, h.0.attn.masked_bias      (none: causal-mask buffers that old checkpoints carry; skipped)

The transposes: GPT-2's linear layers are "Conv1D" modules whose weight is (in, out), used as x @ W; ours are
(out, in), used as x @ Wᵀ like PyTorch's nn.Linear. GPT2Model saves its tensors without the `transformer.` prefix,
GPT2LMHeadModel with it: both load, and so do sharded saves (model.safetensors.index.json and its shards). Sizes
come from config.json, so any GPT-2 size is the same code.

Everything is checked before a model is built: config fields our model hard-codes (GELU's tanh approximation,
LayerNorm eps 1e-5, tied embeddings, ...), shard names (files of the directory, nothing outside it), the sizes
against bounds and against the tensors the files list (gpt_tensors.check_sizes: a config's `n_layer` allocates
nothing before it is confirmed), then every tensor's presence, name, shape and dtype from the files' headers, so a
wrong file fails with one error listing every problem and no half-loaded model. Tensors may be
float32, float16, bfloat16 or float64 in the file and are converted to the requested dtype (float16 and bfloat16
to float32 exactly; bfloat16, which NumPy lacks, is decoded from the raw bytes, without torch). A truncated file
or a damaged header is detected; changed bytes inside the data are not (safetensors has no checksums). Only
safetensors are read: never a pickle (pytorch_model.bin), which can run code when loaded.
"""
import dataclasses
import json
import pathlib
import re

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from .. import nn
from ..engine import backend
from ..models.gpt import GPT, GPTConfig
from .checkpoint import replace_atomically
from .gpt_tensors import CONV1D, LM_HEAD, PREFIX, check_sizes, gpt2_shapes

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"  # a sharded checkpoint: {"weight_map": {tensor name: shard file}}

# Config fields that change the computation, and the values our GPT computes (the first is GPT-2's default,
# which transformers also assumes when a config leaves the field out).
FIXED = {
    "model_type": ("gpt2",),
    "activation_function": ("gelu_new", "gelu_pytorch_tanh"),  # both are GELU's tanh approximation
    "layer_norm_epsilon": (1e-5,),
    "scale_attn_weights": (True,),                              # scores divided by sqrt(head size)
    "scale_attn_by_inverse_layer_idx": (False,),
    "add_cross_attention": (False,),
    "tie_word_embeddings": (True,),                             # lm_head is wte
}
HF_SIZES = {"vocab_size": "vocab_size", "n_positions": "block_size", "n_layer": "n_layer", "n_head": "n_head",
            "n_embd": "n_embd"}  # config.json's name -> GPTConfig's
BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")  # causal-mask buffers in old checkpoints, not weights
FILE_DTYPES = ("F32", "F16", "BF16", "F64")  # safetensors' names of the float types we read
GPT2_EOS = 50256  # GPT-2's <|endoftext|> token id
MAX_LISTED = 12   # problems listed in one error


@dataclasses.dataclass(frozen=True)
class Stored:
    """Where one tensor lies and what its header says (its data is not read yet)."""
    file: pathlib.Path
    name: str    # its name in the file
    dtype: str   # safetensors' name for it: "F32", "BF16", ...
    shape: tuple


def load_pretrained(path, dtype=np.float32):
    """A GPT holding the weights of the Hugging Face GPT-2 directory `path`, in `dtype` (float32 or float64),
    with dropout 0. Raises, before building anything, when the directory does not hold exactly a GPT-2."""
    directory = pathlib.Path(path)
    dtype = backend.check_float_dtype(dtype, "load_pretrained")
    config = read_config(directory / CONFIG)
    source, stored = read_weight_headers(directory)
    check_sizes(dataclasses.asdict(config), {name: entry.shape for name, entry in stored.items()},
                f"{directory / CONFIG} with {source}", names={ours: theirs for theirs, ours in HF_SIZES.items()})
    plan = _match(stored, config, source)
    if LM_HEAD in plan:
        _check_tied(plan)
    model = _fresh_model(config, dtype)
    params = dict(model.named_parameters())
    for short, entry in plan.items():
        if short == LM_HEAD:
            continue
        array = read_tensor(entry).astype(dtype, copy=False)
        # one tensor at a time, so memory holds the model plus one tensor, not two copies of the model
        params[PREFIX + short].data[...] = array.T if short.endswith(CONV1D) else array
    return model


def read_config(path):
    """GPTConfig from a GPT-2 config.json, after checking the fields whose values our GPT hard-codes."""
    hf = read_checked_config(path, FIXED, "GPT-2", "this GPT")
    for field in HF_SIZES:
        if type(hf.get(field)) is not int:
            raise ValueError(f"{path}: {field} must be an integer, got {hf.get(field)!r:.80}")
    if hf.get("n_inner") not in (None, 4 * hf["n_embd"]):
        raise ValueError(f"{path}: n_inner is {hf['n_inner']!r:.80}, but this GPT's MLP has 4 * n_embd = "
                         f"{4 * hf['n_embd']} hidden units")
    try:
        return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"], n_layer=hf["n_layer"],
                         n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=0.0, bias=True)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def read_checked_config(path, fixed, family, model):
    """config.json of a Hugging Face `family` directory, as a dict, after checking that each field that `model`
    hard-codes holds a value it supports (`fixed`: {field: allowed values, the first one the default})."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; a Hugging Face {family} directory holds {CONFIG} and {WEIGHTS}")
    hf = read_json(path)
    for field, allowed in fixed.items():
        value = hf.get(field, allowed[0])
        if value not in allowed:
            raise ValueError(f"{path}: {field} is {value!r:.80}, but {model} supports only "
                             f"{' or '.join(map(repr, allowed))}")
    return hf


def read_weight_headers(directory):
    """(the file that names the weights, {tensor name: Stored}) of a Hugging Face directory: model.safetensors,
    or the shards its index lists, every tensor where the index says. Reads the headers only."""
    source, weight_map = weight_files(directory)
    stored = read_headers([source] if weight_map is None else sorted(set(weight_map.values())))
    if weight_map is not None:
        check_index(source, weight_map, stored)
    return source, stored


def weight_files(directory):
    """(the file to read, None) for model.safetensors, or (the index, {tensor name: shard path}) for a sharded
    checkpoint, model.safetensors.index.json. Like transformers, prefers model.safetensors when both exist."""
    single, index = directory / WEIGHTS, directory / INDEX
    if single.is_file():
        return single, None
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(shard, str) for shard in weight_map.values()):
            raise ValueError(f"{index}: not a safetensors index (a JSON object whose \"weight_map\" maps tensor "
                             f"names to shard file names)")
        for name, shard in weight_map.items():
            # a shard is a file name in this directory: `../x` or `/x` would read any file the user can. (Checked
            # by name, not by resolving: Hugging Face's cache makes every file a link into another folder.)
            if pathlib.PurePath(shard).name != shard or shard in ("", ".", "..") or "\\" in shard:
                raise ValueError(f"{index}: the shard {shard!r:.80} of {name!r:.80} is not a file name in "
                                 f"{directory}")
        return index, {name: directory / shard for name, shard in weight_map.items()}
    if (directory / "pytorch_model.bin").exists():
        raise FileNotFoundError(f"{directory}: holds pytorch_model.bin, a pickle, which this loader never opens "
                                f"(unpickling can run code); convert it once with transformers and the model's "
                                f"class (GPT2LMHeadModel, BertModel, ...): "
                                f"Class.from_pretrained(d).save_pretrained(d, safe_serialization=True)")
    raise FileNotFoundError(f"{directory}: no {WEIGHTS} (nor {INDEX} with its shards)")


def read_json(path):
    """The JSON object in the file at `path`, or a ValueError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # ValueError: bad JSON, or a 5,000-digit number
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_headers(files):
    """{name in the file: Stored} for every tensor in `files`. Reads only the headers; safetensors checks
    there that the header is whole and the file is exactly as long as the tensors it lists."""
    stored = {}
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"{file}: not found (the index {INDEX} lists it)")
        try:
            with safe_open(file, framework="np") as f:
                for name in f.keys():
                    header = f.get_slice(name)
                    if name in stored:
                        raise ValueError(f"{name}: in both {stored[name].file} and {file}")
                    stored[name] = Stored(file, name, header.get_dtype(), tuple(header.get_shape()))
        except SafetensorError as err:
            raise ValueError(f"{file}: not a readable safetensors file ({err}); truncated or corrupt?") from None
    return stored


def check_index(index, weight_map, stored):
    """Every tensor the index lists is in the shard it names."""
    wrong = [f"{name} (listed in {shard.name})" for name, shard in weight_map.items()
             if name not in stored or stored[name].file != shard]
    if wrong:
        raise ValueError(f"{index}: these tensors are not in the shards it names: {', '.join(wrong[:MAX_LISTED])}")


def _match(stored, config, source):
    """{short name (`h.0.ln_1.bias`, or `lm_head.weight`): Stored} for the tensors to load. Collects every
    problem (missing, unexpected, duplicated, wrong shape, wrong dtype) and raises them all in one error."""
    expected = gpt2_shapes(config)
    shapes = {**expected, LM_HEAD: (config.vocab_size, config.n_embd)}
    plan, seen, problems = {}, {}, []
    for name, entry in stored.items():
        short = name if name == LM_HEAD else name[len(PREFIX):] if name.startswith(PREFIX) else name
        if BUFFER.fullmatch(short):
            continue
        if short not in shapes:
            problems.append(f"{name}: unexpected tensor (not part of a GPT-2 with this config)")
            continue
        if short in seen:
            problems.append(f"{name}: stored twice (as {seen[short]} too)")
            continue
        seen[short] = name
        if entry.shape != shapes[short]:
            problems.append(f"{name}: expected shape {shapes[short]} in the file, got {entry.shape}")
        elif entry.dtype not in FILE_DTYPES:
            problems.append(f"{name}: dtype {entry.dtype} in the file; expected a float type "
                            f"({', '.join(FILE_DTYPES)})")
        else:
            plan[short] = entry
    problems += [f"{PREFIX}{short}: missing" for short in expected if short not in seen]
    if problems:
        listed = problems[:MAX_LISTED] + ([f"... and {len(problems) - MAX_LISTED} more"]
                                          if len(problems) > MAX_LISTED else [])
        raise ValueError(f"{source} does not hold a GPT-2 with vocab_size={config.vocab_size}, n_positions="
                         f"{config.block_size}, n_layer={config.n_layer}, n_head={config.n_head}, n_embd="
                         f"{config.n_embd} (from {CONFIG}):\n  " + "\n  ".join(listed))
    return plan


def _check_tied(plan):
    """A stored lm_head must equal wte: our GPT has one matrix for both, so it cannot hold a different head."""
    if not np.array_equal(read_tensor(plan[LM_HEAD]), read_tensor(plan["wte.weight"])):
        raise ValueError(f"{plan[LM_HEAD].file}: {LM_HEAD} differs from {plan['wte.weight'].name}; this GPT ties "
                         f"them (one matrix embeds tokens and scores them), so it cannot load an untied head")


def read_tensor(entry):
    """The tensor's data as a NumPy array (bfloat16 widened to float32)."""
    if entry.dtype == "BF16":
        return _read_bfloat16(entry)
    with safe_open(entry.file, framework="np") as f:
        return f.get_tensor(entry.name)


def _read_bfloat16(entry):
    """NumPy has no bfloat16, so safetensors cannot return one as a NumPy array: read the raw bytes instead.
    A bfloat16 is the top 16 bits of a float32, so shifting each 16-bit pattern up by 16 gives the same number
    as a float32, exactly. The file: 8 bytes (little-endian header length), the JSON header (each tensor's
    dtype, shape and byte range in the data), then the data."""
    with open(entry.file, "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        begin, end = json.loads(f.read(header_size))[entry.name]["data_offsets"]
        f.seek(8 + header_size + begin)
        bits = np.frombuffer(f.read(end - begin), dtype="<u2")
    return (bits.astype(np.uint32) << 16).view(np.float32).reshape(entry.shape)


def _fresh_model(config, dtype):
    """GPT(config) in `dtype`, with zero parameters for the weights to be read into: no random numbers are drawn,
    so loading is quick and does not change the numbers a script gets from the engine's generator after."""
    with nn.skip_init():
        return GPT(config).to(dtype)


def save_pretrained(model, path):
    """Write `model` (a GPT with biases, as GPT-2 has) to the directory `path` as transformers saves a
    GPT2LMHeadModel: model.safetensors (GPT-2's names, Conv1D layouts, no lm_head: it is tied) and config.json.
    Each file is replaced atomically, the weights first: config.json appears only once its weights are there."""
    config = model.config
    if not config.bias:
        raise ValueError("save_pretrained: GPT-2 has biases in every linear layer and LayerNorm; this model was "
                         "built with bias=False, which transformers' GPT-2 cannot hold")
    directory = pathlib.Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: np.ascontiguousarray(t.numpy().T) if name.endswith(CONV1D) else t.numpy()
               for name, t in model.state_dict().items() if name != LM_HEAD}
    hf_config = {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        "add_cross_attention": False, "tie_word_embeddings": True, "initializer_range": 0.02,
        # <|endoftext|> only where the vocabulary reaches it: transformers warns about ids outside it
        "bos_token_id": GPT2_EOS if config.vocab_size > GPT2_EOS else None,
        "eos_token_id": GPT2_EOS if config.vocab_size > GPT2_EOS else None,
        "dtype": str(tensors["transformer.wte.weight"].dtype),
    }
    # "format": "pt" tells transformers the tensors are PyTorch-layout weights it can load
    replace_atomically(directory / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    replace_atomically(directory / CONFIG,
                       lambda tmp: pathlib.Path(tmp).write_text(json.dumps(hf_config, indent=2) + "\n"))
