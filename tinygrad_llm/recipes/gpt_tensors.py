"""The tensors of a GPT, by name and shape, known before any GPT is built: as our checkpoints store them and as
Hugging Face's GPT-2 files do; and the check of a file's sizes against the tensors it really holds.

A file's config can claim anything (`n_layer: 10**9`), and building a model from it allocates what it claims. So a
loader reads the tensors' headers first, then `check_sizes` bounds the sizes and compares them with those headers,
then the full list of expected names is made and compared, and only then is a model built: the memory it takes is
at most what the file itself holds.
"""
import re

PREFIX = "transformer."
LM_HEAD = "lm_head.weight"
TIED = {LM_HEAD: PREFIX + "wte.weight"}  # our GPT's one tie: the head scores tokens with the embedding matrix
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")  # (in, out) in HF
SIZES = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
# Far above any GPT-2 (gpt2-xl: 50257, 1024, 48, 25, 1600), far below what would exhaust a machine's memory
# before a tensor is compared: only lists of names are made from them before that.
MAX_SIZES = {"vocab_size": 2 ** 20, "block_size": 2 ** 20, "n_layer": 2 ** 10, "n_head": 2 ** 10,
             "n_embd": 2 ** 16}
LAYER = re.compile(r"(?:transformer\.)?h\.(\d+)\.")


def gpt2_shapes(config):
    """{name: shape} of every GPT-2 weight as Hugging Face stores it, names without the `transformer.` prefix
    (lm_head aside): Conv1D weights are (in, out), the transposes of ours."""
    V, P, C = config.vocab_size, config.block_size, config.n_embd
    layer = {"ln_1.weight": (C,), "ln_1.bias": (C,),
             "attn.c_attn.weight": (C, 3 * C), "attn.c_attn.bias": (3 * C,),
             "attn.c_proj.weight": (C, C), "attn.c_proj.bias": (C,),
             "ln_2.weight": (C,), "ln_2.bias": (C,),
             "mlp.c_fc.weight": (C, 4 * C), "mlp.c_fc.bias": (4 * C,),
             "mlp.c_proj.weight": (4 * C, C), "mlp.c_proj.bias": (C,)}
    shapes = {"wte.weight": (V, C), "wpe.weight": (P, C)}
    for i in range(config.n_layer):
        shapes.update({f"h.{i}.{name}": shape for name, shape in layer.items()})
    shapes.update({"ln_f.weight": (C,), "ln_f.bias": (C,)})
    return shapes


def checkpoint_shapes(config):
    """{name: shape} of every parameter our checkpoints store for a GPT of `config`: state_dict names and (out, in)
    weights, biases only with config.bias, and each parameter once (lm_head.weight is TIED to wte)."""
    return {PREFIX + name: shape[::-1] if name.endswith(CONV1D) else shape
            for name, shape in gpt2_shapes(config).items() if config.bias or not name.endswith(".bias")}


def check_sizes(sizes, file_shapes, source, names=None):
    """Raise ValueError, naming `source`, unless every size in `sizes` (a dict holding SIZES, ints) is within
    MAX_SIZES and agrees with the tensors listed in `file_shapes` ({name: shape}, our names or Hugging Face's):
    the embeddings' shapes and the layers. The full comparison, name by name, comes after. `names` maps a size
    to what the file calls it, for the messages (config.json's n_positions is our block_size)."""
    names = {name: (names or {}).get(name, name) for name in SIZES}
    for name in SIZES:
        if not 1 <= sizes[name] <= MAX_SIZES[name]:
            raise ValueError(f"{source}: {names[name]} is {sizes[name]}, outside the sizes this GPT accepts "
                             f"(1 to {MAX_SIZES[name]})")
    V, P, C = sizes["vocab_size"], sizes["block_size"], sizes["n_embd"]
    short = {name[len(PREFIX):] if name.startswith(PREFIX) else name: shape for name, shape in file_shapes.items()}
    for tensor, rows, shape in (("wte.weight", "vocab_size", (V, C)), ("wpe.weight", "block_size", (P, C))):
        if tensor in short and tuple(short[tensor]) != shape:
            raise ValueError(f"{source}: {tensor} has shape {tuple(short[tensor])} in the file, but "
                             f"({names[rows]}, {names['n_embd']}) is {shape}")
    layers = {int(match.group(1)) for match in map(LAYER.match, file_shapes) if match}
    if layers != set(range(sizes["n_layer"])):
        held = f"layers {min(layers)} to {max(layers)} ({len(layers)} distinct)" if layers else "no layer"
        raise ValueError(f"{source}: {names['n_layer']} is {sizes['n_layer']}, but the file holds {held}")
