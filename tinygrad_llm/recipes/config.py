"""Training configurations: every hyperparameter of a run, and the named presets.

Names follow nanoGPT's train.py, so its runs can be reproduced flag for flag. Every field is also a command-line
flag of `python -m tinygrad_llm train` (`--n-layer 6`, `--learning-rate 3e-4`, ...).
"""
from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class TrainConfig:
    # data
    data: str = ""                       # a UTF-8 text file; empty: Tiny Shakespeare (text/datasets.py: where from)
    tokenizer: str = "char"              # "char": one token per character; "bpe": byte-level BPE trained on the data
    bpe_vocab_size: int = 1024           # the BPE vocabulary to train (256 bytes + merges); "bpe" only
    batch_size: int = 12
    block_size: int = 64
    gradient_accumulation_steps: int = 1
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    # AdamW, weight decay on 2-D weights only
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0               # 0 disables clipping
    # schedule: linear warmup, cosine decay to min_lr at lr_decay_iters
    max_iters: int = 2000
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    min_lr: float = 1e-4
    decay_lr: bool = True
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    out_dir: str = "out-shakespeare-char"
    seed: int = 1337
    device: str = "cpu"

    def __post_init__(self):
        positive = ("batch_size", "block_size", "gradient_accumulation_steps", "n_layer", "n_head", "n_embd",
                    "max_iters", "eval_interval", "eval_iters", "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig: {name} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.min_lr < 0 or self.min_lr > self.learning_rate:
            raise ValueError(f"TrainConfig: need 0 <= min_lr <= learning_rate and learning_rate > 0, got "
                             f"learning_rate {self.learning_rate}, min_lr {self.min_lr}")
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"TrainConfig: tokenizer must be 'char' or 'bpe', got {self.tokenizer!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"TrainConfig: device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.decay_lr and self.lr_decay_iters <= self.warmup_iters:
            raise ValueError(f"TrainConfig: lr_decay_iters ({self.lr_decay_iters}) must exceed warmup_iters "
                             f"({self.warmup_iters})")

    def to_dict(self):
        return asdict(self)

    def updated(self, **changes):
        return replace(self, **changes)


PRESETS = {
    # nanoGPT's CPU run of shakespeare_char (README: "I only have a macbook")
    "shakespeare-char-cpu": TrainConfig(),
    # nanoGPT's GPU run (config/train_shakespeare_char.py)
    "shakespeare-char": TrainConfig(batch_size=64, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2,
                                    max_iters=5000, lr_decay_iters=5000, eval_interval=250, eval_iters=200),
    # the CPU run on subword tokens: a 1,024-token byte-level BPE trained on the training text (a token is ~3
    # characters, so a block of 64 tokens sees about as far back as 190 characters)
    "shakespeare-bpe-cpu": TrainConfig(tokenizer="bpe", bpe_vocab_size=1024, out_dir="out-shakespeare-bpe"),
}

FIELDS = {f.name: f for f in fields(TrainConfig)}
