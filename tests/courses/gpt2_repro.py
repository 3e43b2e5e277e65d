"""A GPT-2-style training run in the style of a GPT-2 reproduction course: PyTorch's fused attention, the tanh GELU, a
scaled initialisation marked on the residual projections, a data loader that walks a token tensor in order,
gradient accumulation towards a batch size counted in tokens, clipping, a warmup-then-cosine learning rate, a
validation loss, and top-k sampling from a seeded torch.Generator. Characters stand for GPT-2's tokens. Our own
code, written for tests/test_courses.py, which runs it under PyTorch and under `tinygrad-llm run` and compares what
each prints.

    python gpt2_repro.py input.txt
"""
import inspect
import math
import os
import sys
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed import destroy_process_group, init_process_group
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)   # query, key and value for every head at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.c_proj.NANOGPT_SCALE_INIT = 1   # marks a projection into the residual stream for _init_weights
        self.n_head = config.n_head
        self.n_embd = config.n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)   # (B, n_head, T, head size)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU(approximate="tanh")   # GPT-2 was trained with the tanh approximation
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.c_proj.NANOGPT_SCALE_INIT = 1

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


@dataclass
class GPTConfig:
    block_size: int = 32
    vocab_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight   # the token embedding is the output layer's matrix
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            std = 0.02
            if hasattr(module, "NANOGPT_SCALE_INIT"):
                std *= (2 * self.config.n_layer) ** -0.5   # two residual additions per block
            torch.nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.size()
        assert T <= self.config.block_size, f"cannot forward a sequence of {T}, the block size is only " \
                                            f"{self.config.block_size}"
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))   # (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, device_type):
        param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
        decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
        optim_groups = [
            {"params": decay_params, "weight_decay": weight_decay},
            {"params": nodecay_params, "weight_decay": 0.0},
        ]
        num_decay_params = sum(p.numel() for p in decay_params)
        num_nodecay_params = sum(p.numel() for p in nodecay_params)
        print(f"num decayed parameter tensors: {len(decay_params)}, with {num_decay_params:,} parameters")
        print(f"num non-decayed parameter tensors: {len(nodecay_params)}, with {num_nodecay_params:,} parameters")
        fused_available = "fused" in inspect.signature(torch.optim.AdamW).parameters
        use_fused = fused_available and device_type == "cuda"
        print(f"using fused AdamW: {use_fused}")
        return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=(0.9, 0.95), eps=1e-8, fused=use_fused)


# characters as tokens: the vocabulary is the text's own
with open(sys.argv[1]) as f:
    text = f.read()
vocab = sorted(set(text))
char_to_id = {c: i for i, c in enumerate(vocab)}


def encode(s):
    return [char_to_id[c] for c in s]


def decode(ids):
    return "".join(vocab[i] for i in ids)


class DataLoaderLite:
    """Batches of B rows of T tokens, taken in order from the split's tokens, each process its own stretch of every
    num_processes; back to the start at the end."""

    def __init__(self, B, T, process_rank, num_processes, split):
        assert split in {"train", "val"}
        self.B, self.T = B, T
        self.process_rank, self.num_processes = process_rank, num_processes
        cut = int(0.9 * len(text))
        self.tokens = torch.tensor(encode(text[:cut] if split == "train" else text[cut:]))
        print(f"{split}: loaded {len(self.tokens)} tokens, 1 epoch = {len(self.tokens) // (B * T)} batches")
        self.reset()

    def reset(self):
        self.current_position = self.B * self.T * self.process_rank

    def next_batch(self):
        B, T = self.B, self.T
        buf = self.tokens[self.current_position:self.current_position + B * T + 1]
        x = buf[:-1].view(B, T)   # inputs
        y = buf[1:].view(B, T)    # targets: each input's next token
        self.current_position += B * T * self.num_processes
        if self.current_position + (B * T * self.num_processes + 1) > len(self.tokens):
            self.reset()
        return x, y


def completion_examples(count, context_size=24, ending_size=8):
    """Multiple-choice examples from the validation text, as a benchmark of sentence endings has them: a context and
    four endings, the true continuation at position `label`, the others taken from further on in the text."""
    held_out = text[int(0.9 * len(text)):]
    examples = []
    for i in range(count):
        start = 400 * i
        ending_at = [start + context_size + 97 * k for k in range(4)]
        endings = [held_out[at:at + ending_size] for at in ending_at]
        label = i % 4
        endings[0], endings[label] = endings[label], endings[0]
        examples.append((held_out[start:start + context_size], endings, label))
    return examples


def render_example(context, endings):
    """tokens (4, longest row): the context followed by each ending; mask 1 over the ending's tokens only."""
    context_tokens = encode(context)
    token_rows = [context_tokens + encode(ending) for ending in endings]
    mask_rows = [[0] * len(context_tokens) + [1] * len(encode(ending)) for ending in endings]
    max_len = max(len(row) for row in token_rows)
    tokens = torch.zeros((4, max_len), dtype=torch.long)
    mask = torch.zeros((4, max_len), dtype=torch.long)
    for i, (token_row, mask_row) in enumerate(zip(token_rows, mask_rows)):
        tokens[i, :len(token_row)] = torch.tensor(token_row)
        mask[i, :len(mask_row)] = torch.tensor(mask_row)
    return tokens, mask


def get_most_likely_row(tokens, mask, logits):
    """The row whose ending the model finds likeliest: the lowest mean loss over the ending's tokens."""
    shift_logits = logits[..., :-1, :].contiguous()   # the logits at t predict the token at t + 1
    shift_tokens = tokens[..., 1:].contiguous()
    shift_losses = F.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), shift_tokens.view(-1),
                                   reduction="none")
    shift_losses = shift_losses.view(tokens.size(0), -1)
    shift_mask = mask[..., 1:].contiguous()
    avg_loss = (shift_losses * shift_mask).sum(dim=1) / shift_mask.sum(dim=1)
    return avg_loss.argmin().item()


ddp = int(os.environ.get("RANK", -1)) != -1   # a torchrun launch
if ddp:
    assert torch.cuda.is_available(), "distributed training here needs CUDA"
    init_process_group(backend="nccl")
    ddp_rank = int(os.environ["RANK"])
    ddp_local_rank = int(os.environ["LOCAL_RANK"])
    ddp_world_size = int(os.environ["WORLD_SIZE"])
    device = f"cuda:{ddp_local_rank}"
    torch.cuda.set_device(device)
    master_process = ddp_rank == 0
else:
    ddp_rank, ddp_local_rank, ddp_world_size = 0, 0, 1
    master_process = True
    device = "cpu"
    if torch.cuda.is_available():
        device = "cuda"
    elif hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        device = "mps"
    print(f"using device: {device}")
device_type = "cuda" if device.startswith("cuda") else "cpu"
mixed_precision = False   # bfloat16 autocast speeds a GPU up; float32 keeps the run comparable across engines

torch.manual_seed(1337)
if torch.cuda.is_available():
    torch.cuda.manual_seed(1337)

total_batch_size = 512   # tokens per optimizer step
B, T = 8, 32
assert total_batch_size % (B * T * ddp_world_size) == 0, "a step is a whole number of micro-batches"
grad_accum_steps = total_batch_size // (B * T * ddp_world_size)
if master_process:
    print(f"total desired batch size: {total_batch_size}")
    print(f"=> calculated gradient accumulation steps: {grad_accum_steps}")

train_loader = DataLoaderLite(B=B, T=T, process_rank=ddp_rank, num_processes=ddp_world_size, split="train")
val_loader = DataLoaderLite(B=B, T=T, process_rank=ddp_rank, num_processes=ddp_world_size, split="val")
torch.set_float32_matmul_precision("high")

model = GPT(GPTConfig(vocab_size=len(vocab)))
model.to(device)
if ddp:
    model = DDP(model, device_ids=[ddp_local_rank])
raw_model = model.module if ddp else model   # the model itself, under DDP's wrapper

max_lr = 3e-3
min_lr = max_lr * 0.1
warmup_steps = 5
max_steps = 20


def get_lr(it):
    if it < warmup_steps:
        return max_lr * (it + 1) / warmup_steps
    if it > max_steps:
        return min_lr
    decay_ratio = (it - warmup_steps) / (max_steps - warmup_steps)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))   # from 1 down to 0
    return min_lr + coeff * (max_lr - min_lr)


optimizer = raw_model.configure_optimizers(weight_decay=0.1, learning_rate=max_lr, device_type=device_type)
examples = completion_examples(8)
use_compile = False   # torch.compile(model) above would be skipped by the evaluations below
log_dir = "log"
os.makedirs(log_dir, exist_ok=True)
log_file = os.path.join(log_dir, "log.txt")
with open(log_file, "w") as f:   # start the log afresh
    pass

for step in range(max_steps):
    last_step = step == max_steps - 1

    if step % 10 == 0 or last_step:
        model.eval()
        val_loader.reset()
        with torch.no_grad():
            val_loss_accum = 0.0
            val_loss_steps = 4
            for _ in range(val_loss_steps):
                x, y = val_loader.next_batch()
                x, y = x.to(device), y.to(device)
                with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=mixed_precision):
                    logits, loss = model(x, y)
                val_loss_accum += (loss / val_loss_steps).detach()
        if ddp:
            dist.all_reduce(val_loss_accum, op=dist.ReduceOp.AVG)
        if master_process:
            print(f"validation loss: {val_loss_accum.item():.6f}")
            with open(log_file, "a") as f:
                f.write(f"{step} val {val_loss_accum.item():.4f}\n")
            if step > 0 and (step % 5000 == 0 or last_step):
                checkpoint = {"model": raw_model.state_dict(), "config": asdict(raw_model.config), "step": step,
                              "val_loss": val_loss_accum.item()}
                torch.save(checkpoint, os.path.join(log_dir, f"model_{step:05d}.pt"))

    if (step % 10 == 0 or last_step) and not use_compile:
        num_correct_norm, num_total = 0, 0
        for i, (context, endings, label) in enumerate(examples):
            if i % ddp_world_size != ddp_rank:   # each process scores its share
                continue
            tokens, mask = render_example(context, endings)
            tokens, mask = tokens.to(device), mask.to(device)
            with torch.no_grad():
                with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=mixed_precision):
                    logits, loss = model(tokens)
                pred_norm = get_most_likely_row(tokens, mask, logits)
            num_total += 1
            num_correct_norm += int(pred_norm == label)
        if ddp:
            counts = torch.tensor([num_total, num_correct_norm], dtype=torch.long, device=device)
            dist.all_reduce(counts, op=dist.ReduceOp.SUM)
            num_total, num_correct_norm = counts.tolist()
        if master_process:
            print(f"completion accuracy: {num_correct_norm}/{num_total}={num_correct_norm / num_total:.4f}")

    if (step > 0 and step % 10 == 0) or last_step:
        model.eval()
        num_return_sequences = 2
        max_length = 32
        tokens = torch.tensor(encode("First Citizen:\n"), dtype=torch.long)
        xgen = tokens.unsqueeze(0).repeat(num_return_sequences, 1).to(device)
        sample_rng = torch.Generator(device=device)
        sample_rng.manual_seed(42)   # the same samples each time, whatever the training drew
        while xgen.size(1) < max_length:
            with torch.no_grad():
                logits, _ = model(xgen)
                probs = F.softmax(logits[:, -1, :], dim=-1)
                topk_probs, topk_indices = torch.topk(probs, 50, dim=-1)   # sample among the 50 likeliest only
                ix = torch.multinomial(topk_probs, 1, generator=sample_rng)   # (B, 1)
                xcol = torch.gather(topk_indices, -1, ix)   # the token ids those picks stand for
                xgen = torch.cat((xgen, xcol), dim=1)
        for i in range(num_return_sequences):
            print(f"step {step} sample {i}: {decode(xgen[i, :max_length].tolist())!r}")

    model.train()
    optimizer.zero_grad()
    loss_accum = 0.0
    for micro_step in range(grad_accum_steps):
        x, y = train_loader.next_batch()
        x, y = x.to(device), y.to(device)
        if ddp:   # synchronise the gradients after the last micro-step only
            model.require_backward_grad_sync = micro_step == grad_accum_steps - 1
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=mixed_precision):
            logits, loss = model(x, y)
        loss = loss / grad_accum_steps   # each micro-batch's share of the mean
        loss_accum += loss.detach()
        loss.backward()
    if ddp:
        dist.all_reduce(loss_accum, op=dist.ReduceOp.AVG)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    lr = get_lr(step)
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    optimizer.step()
    if device_type == "cuda":
        torch.cuda.synchronize()
    if master_process:
        print(f"step {step:4d} | loss: {loss_accum.item():.6f} | lr {lr:.4e} | norm: {norm:.4f}")

if ddp:
    destroy_process_group()

# the last checkpoint, as one would load it to evaluate or sample
checkpoint = torch.load(os.path.join(log_dir, f"model_{max_steps - 1:05d}.pt"), map_location=device)
reloaded = GPT(GPTConfig(**checkpoint["config"]))
reloaded.load_state_dict(checkpoint["model"])
reloaded.to(device)
reloaded.eval()
val_loader.reset()
x, y = val_loader.next_batch()
with torch.no_grad():
    _, loss = reloaded(x.to(device), y.to(device))
print(f"reloaded step {checkpoint['step']}: validation loss {checkpoint['val_loss']:.6f} when saved, first "
      f"validation batch {loss.item():.6f}")
