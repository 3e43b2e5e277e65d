"""Words in, made-up words out: a character-level model in makemore's style, written for our tests.

Five models learn which character follows which in a list of short names (a '.' token marks both ends of a word):
a bigram table, an MLP over the previous few characters, an RNN, a GRU and a small Transformer. Each is trained for
a few steps with AdamW on batches from a DataLoader, evaluated, saved, loaded back and sampled. A plain PyTorch
program:

    python makemore.py                          # PyTorch
    python -m tinygrad_llm run makemore.py      # the same program on tinygrad_llm

Every loss is printed in full, so two runs can be compared number by number (tests/test_courses.py does).
"""
import argparse
import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

NAMES = """
ada adam aiden alba alex alfie alice amara amber amir amy ana anna archie aria ariel arlo arthur asher aspen
aubrey august aurora ava axel bailey basil bea bella ben beth bianca blake bo bonnie brady brooke bruno caleb
calla cam cara carl cassie cato cecil celia chloe clara cleo cole cora cruz cyrus daisy dana dante darcy dara
dean della derek dev diana dina dora drew duke dylan eden edie eli ella elsa emil emma enzo eric esme etta eva
evan ezra faye felix fern finn fiona flora ford frida gail gemma gia gil gina grace greta gus hana hank hazel
heidi hugo ian ida ike ilsa ines ira iris isla ivan ivy jack jade jake jana jay jean jett jill joan joel jonah
jude jules june kai kara kate kay kian kim kira kit kobe lana lara leah leo lev lila lily lina liv lola lou luca
lucy luke luna lyra mae mara mark mateo max maya mia milo mira molly nadia nell nia nico nina noah noel nora oli
omar opal oren otis owen paige pam pearl pia pip quinn rafe rhea rita rosa rose roy ruby rue ryan sage sam sara
seth silas sky sofia stella tara tess theo tia toby troy uma una vera vic vida wade will wren xena yara yuri
zane zara zeke zoe
""".split()


# ---------------------------------------------------------------------------------------------- the data

class WordDataset(Dataset):
    """Word i as a pair of rows of max_len + 1 token ids: x starts with the '.' token (0) and holds the word, y holds
    the word then '.'; past the end y is -1, which the loss skips."""

    def __init__(self, words, alphabet, max_len):
        self.words, self.alphabet, self.max_len = words, alphabet, max_len
        self.char_to_id = {c: i + 1 for i, c in enumerate(alphabet)}
        self.id_to_char = {i: c for c, i in self.char_to_id.items()}

    def __len__(self):
        return len(self.words)

    def vocab_size(self):
        return len(self.alphabet) + 1   # the letters and '.'

    def block_size(self):
        return self.max_len + 1

    def contains(self, word):
        return word in self.words

    def encode(self, word):
        return torch.tensor([self.char_to_id[c] for c in word], dtype=torch.long)

    def decode(self, ids):
        return "".join(self.id_to_char[i] for i in ids)

    def __getitem__(self, index):
        ids = self.encode(self.words[index])
        n = len(ids)
        x = torch.zeros(self.max_len + 1, dtype=torch.long)
        y = torch.zeros(self.max_len + 1, dtype=torch.long)
        x[1:1 + n] = ids
        y[:n] = ids
        y[n + 1:] = -1
        return x, y


def split_words(words, seed):
    """A test set of a tenth of the words, drawn by a permutation, and the rest for training."""
    alphabet = sorted(set("".join(words)))
    max_len = max(len(w) for w in words)
    order = torch.randperm(len(words), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = len(words) // 10
    train = [words[i] for i in order[n_test:]]
    test = [words[i] for i in order[:n_test]]
    return WordDataset(train, alphabet, max_len), WordDataset(test, alphabet, max_len)


class EndlessLoader:
    """Batches forever: indices drawn with replacement, so there are no epochs to count."""

    def __init__(self, dataset, **kwargs):
        sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=10**10)
        self.loader = DataLoader(dataset, sampler=sampler, **kwargs)
        self.batches = iter(self.loader)

    def next(self):
        try:
            return next(self.batches)
        except StopIteration:   # not in this lifetime, but a sampler may end
            self.batches = iter(self.loader)
            return next(self.batches)


# ---------------------------------------------------------------------------------------------- the models

@dataclass
class Config:
    block_size: int = None
    vocab_size: int = None
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 16
    n_embd2: int = 24


def next_char_loss(logits, targets):
    """The mean cross-entropy over the positions that have a target (-1: past the word's end), or None."""
    if targets is None:
        return None
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


class Bigram(nn.Module):
    """The next character's logits depend on the current one alone: a table, one row per character."""

    def __init__(self, config):
        super().__init__()
        self.table = nn.Parameter(torch.zeros((config.vocab_size, config.vocab_size)))

    def get_block_size(self):
        return 1

    def forward(self, idx, targets=None):
        logits = self.table[idx]
        return logits, next_char_loss(logits, targets)


class MLP(nn.Module):
    """The embeddings of the previous block_size characters, side by side, through one hidden layer. Before the
    word's start there is nothing: a token of its own (vocab_size) stands there."""

    def __init__(self, config):
        super().__init__()
        self.block_size, self.vocab_size = config.block_size, config.vocab_size
        self.wte = nn.Embedding(config.vocab_size + 1, config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(self.block_size * config.n_embd, config.n_embd2),
            nn.Tanh(),
            nn.Linear(config.n_embd2, self.vocab_size),
        )

    def get_block_size(self):
        return self.block_size

    def forward(self, idx, targets=None):
        looking_back = []
        for _ in range(self.block_size):
            looking_back.append(self.wte(idx))
            idx = torch.roll(idx, 1, 1)        # one step further back
            idx[:, 0] = self.vocab_size        # and nothing before the start
        x = torch.cat(looking_back, -1)
        logits = self.mlp(x)
        return logits, next_char_loss(logits, targets)


class RNNCell(nn.Module):
    """h_t = tanh(W [x_t, h_{t-1}] + b)."""

    def __init__(self, config):
        super().__init__()
        self.xh_to_h = nn.Linear(config.n_embd + config.n_embd2, config.n_embd2)

    def forward(self, xt, hprev):
        xh = torch.cat([xt, hprev], dim=1)
        return torch.tanh(self.xh_to_h(xh))


class GRUCell(nn.Module):
    """A gated cell: r picks how much of h_{t-1} the candidate hbar sees, z how far h moves towards hbar."""

    def __init__(self, config):
        super().__init__()
        self.xh_to_z = nn.Linear(config.n_embd + config.n_embd2, config.n_embd2)
        self.xh_to_r = nn.Linear(config.n_embd + config.n_embd2, config.n_embd2)
        self.xh_to_hbar = nn.Linear(config.n_embd + config.n_embd2, config.n_embd2)

    def forward(self, xt, hprev):
        xh = torch.cat([xt, hprev], dim=1)
        r = torch.sigmoid(self.xh_to_r(xh))
        xhr = torch.cat([xt, r * hprev], dim=1)
        hbar = torch.tanh(self.xh_to_hbar(xhr))
        z = torch.sigmoid(self.xh_to_z(xh))
        return (1 - z) * hprev + z * hbar


class RNN(nn.Module):
    """A cell unrolled over the word, from a learned start state."""

    def __init__(self, config, cell_type):
        super().__init__()
        self.block_size = config.block_size
        self.start = nn.Parameter(torch.zeros(1, config.n_embd2))
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.cell = RNNCell(config) if cell_type == "rnn" else GRUCell(config)
        self.lm_head = nn.Linear(config.n_embd2, config.vocab_size)

    def get_block_size(self):
        return self.block_size

    def forward(self, idx, targets=None):
        b, t = idx.size()
        emb = self.wte(idx)
        h = self.start.expand(b, -1)
        hiddens = []
        for i in range(t):
            h = self.cell(emb[:, i, :], h)
            hiddens.append(h)
        logits = self.lm_head(torch.stack(hiddens, 1))
        return logits, next_char_loss(logits, targets)


class NewGELU(nn.Module):
    """GELU by its tanh approximation."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        n = config.block_size
        self.register_buffer("bias", torch.tril(torch.ones(n, n)).view(1, 1, n, n))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.ModuleDict(dict(
            c_fc=nn.Linear(config.n_embd, 4 * config.n_embd),
            c_proj=nn.Linear(4 * config.n_embd, config.n_embd),
            act=NewGELU(),
        ))
        m = self.mlp
        self.mlpf = lambda x: m.c_proj(m.act(m.c_fc(x)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlpf(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.block_size = config.block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def get_block_size(self):
        return self.block_size

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.block_size, f"a sequence of {t} is longer than the block size {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits, next_char_loss(logits, targets)


def build(kind, config):
    if kind == "bigram":
        return Bigram(config)
    if kind == "mlp":
        return MLP(config)
    if kind in ("rnn", "gru"):
        return RNN(config, cell_type=kind)
    if kind == "transformer":
        return Transformer(config)
    raise ValueError(f"no model called {kind}")


# ---------------------------------------------------------------------------------------------- sampling, evaluating

@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, do_sample=False, top_k=None):
    """Extend each row of idx by max_new_tokens tokens, each drawn from the model's distribution (or its most likely
    token), seeing at most block_size tokens back."""
    block_size = model.get_block_size()
    for _ in range(max_new_tokens):
        idx_cond = idx if idx.size(1) <= block_size else idx[:, -block_size:]
        logits, _ = model(idx_cond)
        logits = logits[:, -1, :] / temperature
        if top_k is not None:
            v, _ = torch.topk(logits, top_k)
            logits[logits < v[:, [-1]]] = -float("Inf")
        probs = F.softmax(logits, dim=-1)
        if do_sample:
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            _, idx_next = torch.topk(probs, k=1, dim=-1)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def sample_words(model, dataset, n, device, temperature=1.0, do_sample=True, top_k=None):
    """n words, each up to the first '.' the model writes."""
    start = torch.zeros(n, 1, dtype=torch.long).to(device)
    rows = generate(model, start, dataset.block_size() - 1, temperature, do_sample, top_k).to("cpu")
    words = []
    for row in rows[:, 1:].tolist():
        end = row.index(0) if 0 in row else len(row)
        words.append(dataset.decode(row[:end]))
    return words


@torch.inference_mode()
def evaluate(model, dataset, batch_size, device, max_batches=None, seed=0):
    model.eval()
    loader = DataLoader(dataset, shuffle=True, batch_size=batch_size, num_workers=0,
                        generator=torch.Generator().manual_seed(seed))
    losses = []
    for i, batch in enumerate(loader):
        x, y = [t.to(device) for t in batch]
        _, loss = model(x, y)
        losses.append(loss.item())
        if max_batches is not None and i + 1 >= max_batches:
            break
    model.train()
    return torch.tensor(losses).mean().item()


def train(kind, args, train_set, test_set):
    torch.manual_seed(args.seed)
    config = Config(vocab_size=train_set.vocab_size(), block_size=train_set.block_size(),
                    n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, n_embd2=args.n_embd2)
    model = build(kind, config).to(args.device)
    print(f"{kind} parameters {sum(p.numel() for p in model.parameters())}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay,
                                  betas=(0.9, 0.99), eps=1e-8)
    batches = EndlessLoader(train_set, batch_size=args.batch_size, num_workers=0)
    for step in range(args.max_steps):
        x, y = [t.to(args.device) for t in batches.next()]
        _, loss = model(x, y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        print(f"{kind} step {step} loss {loss.item():.8f}")
    train_loss = evaluate(model, train_set, args.batch_size, args.device, max_batches=4)
    test_loss = evaluate(model, test_set, args.batch_size, args.device, max_batches=4)
    print(f"{kind} train loss {train_loss:.8f} test loss {test_loss:.8f}")
    path = os.path.join(args.work_dir, f"{kind}.pt")
    torch.save(model.state_dict(), path)
    model = build(kind, config).to(args.device)   # sampled from what was saved, as --sample-only would
    model.load_state_dict(torch.load(path))
    for how, n, temperature, do_sample, top_k in (("sampled", args.n_samples, 1.0, True, None),
                                                  ("top-3", args.n_samples, 0.8, True, 3),
                                                  ("greedy", 1, 1.0, False, None)):
        for word in sample_words(model, train_set, n, args.device, temperature, do_sample, top_k):
            where = "train" if train_set.contains(word) else "test" if test_set.contains(word) else "new"
            print(f"{kind} sample {how} {word or '(empty)'} {where}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="makemore-style character models, a few steps each")
    parser.add_argument("--type", default="bigram,mlp,rnn,gru,transformer", help="the models to train, by name")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work-dir", default="out", help="where each model's weights are saved")
    parser.add_argument("--seed", type=int, default=3407)
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-head", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=16)
    parser.add_argument("--n-embd2", type=int, default=24)
    parser.add_argument("--n-samples", type=int, default=6)
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    train_set, test_set = split_words(NAMES, args.seed)
    print(f"words {len(NAMES)} train {len(train_set)} test {len(test_set)} vocabulary {train_set.vocab_size()} "
          f"block {train_set.block_size()}")
    for kind in args.type.split(","):
        train(kind, args, train_set, test_set)
