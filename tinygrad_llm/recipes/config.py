"""Training configurations: every hyperparameter of a run, and the named presets.

Names follow nanoGPT's train.py, so its runs can be reproduced flag for flag. Every field is also a command-line
flag of `python -m tinygrad_llm train` (`--n-layer 6`, `--learning-rate 3e-4`, ...), whose help line is the
field's `help`. A config is checked whole when it is made: a value that cannot work raises ConfigError, naming the
setting, before anything is loaded or written.

A resumed run keeps the settings its checkpoint holds. Each field says beside it whether it may change then:
CHANGEABLE ones (how long, how often to evaluate and log, the learning-rate schedule, clipping, the device) apply
from the resumed iteration on; FIXED ones (the model, the data, the tokenizer, the batch, the seed, the dtype,
AdamW's state) would make it another run, and are refused (`resume_changes` decides).
"""
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace


class ConfigError(ValueError):
    """A setting that cannot work. The message names settings in braces, `{learning_rate}`: str(error) shows them
    as Python names, error.as_flags() as the command line's flags (`--learning-rate`)."""

    def __init__(self, owner, template):
        self.owner, self.template = owner, template
        super().__init__(f"{owner}: {_named(template, flags=False)}")

    def as_flags(self):
        return _named(self.template, flags=True)


def _named(template, flags):
    return re.sub(r"\{(\w+)\}", lambda m: "--" + m[1].replace("_", "-") if flags else m[1], template)


FIXED, CHANGEABLE = "fixed", "changeable"   # whether a resumed run may change a setting


def setting(default, help, on_resume=FIXED):
    """A field of TrainConfig, the help line its flag shows, and whether a resumed run may change it."""
    return field(default=default, metadata={"help": help, "on_resume": on_resume})


@dataclass(frozen=True)
class TrainConfig:
    # data, tokenizer and batch: fixed, as iteration i's batch is drawn from them (and the seed) alone
    data: str = setting("", "a UTF-8 text file (.txt or .txt.gz); empty: Tiny Shakespeare, which ships with the "
                            "package")
    tokenizer: str = setting("char", "'char': one token per character; 'bpe': a byte-level BPE trained on the "
                                     "training text")
    bpe_vocab_size: int = setting(1024, "the BPE vocabulary to train (256 bytes + merges + 1 special); 'bpe' only")
    batch_size: int = setting(12, "sequences per micro-batch")
    block_size: int = setting(64, "tokens per sequence: the longest context the model sees")
    gradient_accumulation_steps: int = setting(1, "micro-batches whose gradients add up to one step")
    # model: fixed, the weights' shapes (dropout is part of the model's config too, which restore compares)
    n_layer: int = setting(4, "transformer blocks")
    n_head: int = setting(4, "attention heads per block (n_embd must be a multiple)")
    n_embd: int = setting(128, "width of the residual stream")
    dropout: float = setting(0.0, "dropout probability, in [0, 1)")
    bias: bool = setting(False, "biases in the linear layers and layer norms")
    # AdamW, weight decay on 2-D weights only. The learning rate and clipping act anew at every step, so they may
    # change; weight decay and the betas are fixed: the checkpoint's optimizer state holds them (its moments were
    # averaged with those betas)
    learning_rate: float = setting(1e-3, "AdamW's peak learning rate", CHANGEABLE)
    weight_decay: float = setting(0.1, "AdamW's decoupled weight decay, on 2-D weights only")
    beta1: float = setting(0.9, "AdamW's decay rate of the gradient's running mean, in [0, 1)")
    beta2: float = setting(0.99, "AdamW's decay rate of the squared gradient's running mean, in [0, 1)")
    grad_clip: float = setting(1.0, "clip the global gradient norm to this; 0 disables clipping", CHANGEABLE)
    # schedule: linear warmup, cosine decay to min_lr at lr_decay_iters; computed at each step, so it may change
    max_iters: int = setting(2000, "optimizer steps in all", CHANGEABLE)
    warmup_iters: int = setting(100, "steps of linear warmup from 0 to learning_rate", CHANGEABLE)
    lr_decay_iters: int = setting(2000, "the step where the cosine decay reaches min_lr", CHANGEABLE)
    min_lr: float = setting(1e-4, "the learning rate at the end of the decay", CHANGEABLE)
    decay_lr: bool = setting(True, "warmup and cosine decay; off: learning_rate throughout", CHANGEABLE)
    # evaluation, logging, checkpoints: they may change (a run's directory is wherever it is now)
    eval_interval: int = setting(250, "steps between evaluations (each saves last.safetensors, and "
                                      "best.safetensors when val improves)", CHANGEABLE)
    eval_iters: int = setting(20, "batches per split in an evaluation", CHANGEABLE)
    log_interval: int = setting(10, "steps between lines of metrics.jsonl", CHANGEABLE)
    telemetry: int = setting(0, "every N steps, the network's health to telemetry.jsonl: gradient, weight and "
                                "update norms per parameter, activations, GELU saturation and attention entropy "
                                "per block (plotted at the end); 0: off", CHANGEABLE)
    out_dir: str = setting("out-shakespeare-char", "the run's directory: checkpoints, metrics.jsonl, loss.png",
                           CHANGEABLE)
    # the seed and the dtype are fixed (every batch and dropout mask; the weights' dtype); a checkpoint loads on
    # either device
    seed: int = setting(1337, "seeds the weights, dropout and every batch")
    device: str = setting("cpu", "'cpu' or 'cuda'", CHANGEABLE)
    dtype: str = setting("float32", "the parameters' and activations' dtype: 'float32', or 'float64' for checks")
    # how the CPU's threads share the work: a matter of speed (though BLAS may round a product otherwise on one
    # thread than on two: engine/threads.py), so it may change
    blas_on_pool: bool = setting(False, "on the CPU, the matmuls cut over the engine's own threads with BLAS at one "
                                        "thread, instead of on BLAS's threads: faster where they are large "
                                        "(shakespeare-char), slower where they are small (engine/threads.py)",
                                 CHANGEABLE)

    def __post_init__(self):
        for name in (f.name for f in fields(self)):
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                self._refuse(f"{{{name}}} must be a finite number, got {value}")
        positive = ("batch_size", "block_size", "gradient_accumulation_steps", "n_layer", "n_head", "n_embd",
                    "max_iters", "eval_interval", "eval_iters", "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                self._refuse(f"{{{name}}} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_iters", "weight_decay", "grad_clip", "seed", "telemetry"):
            if getattr(self, name) < 0:
                self._refuse(f"{{{name}}} must not be negative, got {getattr(self, name)}")
        for name in ("dropout", "beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                self._refuse(f"{{{name}}} must be in [0, 1), got {getattr(self, name)}")
        if self.learning_rate <= 0:
            self._refuse(f"{{learning_rate}} must be positive, got {self.learning_rate}")
        if not 0 <= self.min_lr <= self.learning_rate:
            self._refuse(f"{{min_lr}} must be in [0, {{learning_rate}}] = [0, {self.learning_rate}], got "
                         f"{self.min_lr}")
        if self.n_embd % self.n_head:
            self._refuse(f"{{n_embd}} ({self.n_embd}) must be a multiple of {{n_head}} ({self.n_head})")
        if self.tokenizer not in ("char", "bpe"):
            self._refuse(f"{{tokenizer}} must be 'char' or 'bpe', got {self.tokenizer!r}")
        if self.tokenizer == "bpe" and self.bpe_vocab_size < 257:
            self._refuse(f"{{bpe_vocab_size}} must be at least 257 (256 bytes and <|endoftext|>), got "
                         f"{self.bpe_vocab_size}")
        if self.device not in ("cpu", "cuda"):
            self._refuse(f"{{device}} must be 'cpu' or 'cuda', got {self.device!r}")
        if self.dtype not in ("float32", "float64"):
            self._refuse(f"{{dtype}} must be 'float32' or 'float64', got {self.dtype!r}")
        if not self.out_dir:
            self._refuse("{out_dir} must not be empty")
        if self.decay_lr and self.lr_decay_iters <= self.warmup_iters:
            self._refuse(f"{{lr_decay_iters}} ({self.lr_decay_iters}) must exceed {{warmup_iters}} "
                         f"({self.warmup_iters}); or turn the schedule off with {{decay_lr}} false")

    def _refuse(self, template):
        raise ConfigError("TrainConfig", template)

    def doubts(self):
        """Settings that work but are likely mistakes: [ConfigError], to warn about, not to raise."""
        doubts = []
        if self.learning_rate > 0.1:
            doubts.append(ConfigError("TrainConfig", f"{{learning_rate}} {self.learning_rate} is far above "
                                                     "AdamW's usual 1e-4 to 1e-2 (each step moves a weight by up to "
                                                     "about the learning rate): expect the loss to diverge"))
        return doubts

    def to_dict(self):
        return asdict(self)

    def updated(self, **changes):
        return replace(self, **changes)


DEFAULT_PRESET = "shakespeare-char-cpu"
PRESETS = {
    # nanoGPT's CPU run of shakespeare_char (README: "I only have a macbook")
    DEFAULT_PRESET: TrainConfig(),
    # nanoGPT's GPU run (config/train_shakespeare_char.py)
    "shakespeare-char": TrainConfig(batch_size=64, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2,
                                    max_iters=5000, lr_decay_iters=5000, eval_interval=250, eval_iters=200,
                                    blas_on_pool=True),
    # the CPU run on subword tokens: a 1,024-token byte-level BPE trained on the training text (a token is ~3
    # characters, so a block of 64 tokens sees about as far back as 190 characters)
    "shakespeare-bpe-cpu": TrainConfig(tokenizer="bpe", bpe_vocab_size=1024, out_dir="out-shakespeare-bpe"),
}

FIELDS = {f.name: f for f in fields(TrainConfig)}


def resume_changes(run, wanted):
    """What a resumed run changes: `run` holds the settings its checkpoint was saved with, `wanted` those it is to
    go on with. Returns {name: (run's value, wanted value)} for each CHANGEABLE setting that differs; a FIXED one
    that differs raises ConfigError, naming each one and both values."""
    differ = {name: (getattr(run, name), getattr(wanted, name)) for name in FIELDS
              if getattr(run, name) != getattr(wanted, name)}
    fixed = [f"{{{name}}} {new!r} differs from the run's {old!r}" for name, (old, new) in differ.items()
             if FIELDS[name].metadata["on_resume"] == FIXED]
    if fixed:
        raise ConfigError("resume", f"{'; '.join(fixed)}: a resumed run keeps its model, data, tokenizer, batch, "
                                    f"seed, dtype and AdamW's weight decay and betas (start a new run in another "
                                    f"{{out_dir}} to change them)")
    return differ

