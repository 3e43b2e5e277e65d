"""A small GPT built piece by piece, in the style of the LLMs-from-scratch book, written for our tests.

A sliding-window Dataset over the character ids of a short text, its DataLoader, multi-head attention with a causal
mask, a hand-written LayerNorm and GELU, transformer blocks with shortcut connections, a training loop with
evaluation, saving and loading the model and optimizer, and text generation by argmax and by temperature and top-k
sampling. A plain PyTorch program:

    python llms_from_scratch.py                          # PyTorch
    python -m tinygrad_llm run llms_from_scratch.py      # the same program on tinygrad_llm

Every loss is printed in full, so two runs can be compared number by number (tests/test_courses.py does).
"""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

TEXT = (
    "The lighthouse keeper climbed the stairs each evening before the sun went down. "
    "She counted the steps as she went, one hundred and twelve of them, and at the top she wound the clock "
    "that turned the great lamp. Ships passed far out on the water, and some nights none passed at all. "
    "In the winter the wind pressed against the glass and the whole tower hummed like a bottle. "
    "She kept a notebook in which she wrote the weather, the ships, the birds that rested on the rail, "
    "and now and then a line about the sea itself: grey today, green tomorrow. "
    "Her brother sent letters from the city, asking when she would come home, and she answered each one "
    "slowly, by lamplight, telling him about the gulls and the fog and the fishing boats that came in at dawn. "
    "When the supply boat came on the first of the month she traded her notebooks for flour and oil and news. "
    "The boatman laughed at her long accounts of clouds, but he read every page on the way back to the harbour. "
    "Years later, when the lamp was turned by a motor and no keeper was needed, the notebooks were found "
    "in a box in the harbour office, tied with string, every evening of every year written down in order."
)


class CharTokenizer:
    """Each character of the text is one token."""

    def __init__(self, text):
        vocab = sorted(set(text))
        self.str_to_int = {ch: i for i, ch in enumerate(vocab)}
        self.int_to_str = {i: ch for ch, i in self.str_to_int.items()}

    def encode(self, text):
        return [self.str_to_int[ch] for ch in text]

    def decode(self, ids):
        return "".join(self.int_to_str[i] for i in ids)


class GPTDatasetV1(Dataset):
    """Windows of max_length token ids, each with the same window moved one token on as its targets; a window
    starts every `stride` tokens."""

    def __init__(self, txt, tokenizer, max_length, stride):
        self.input_ids = []
        self.target_ids = []
        token_ids = tokenizer.encode(txt)
        for i in range(0, len(token_ids) - max_length, stride):
            input_chunk = token_ids[i:i + max_length]
            target_chunk = token_ids[i + 1:i + max_length + 1]
            self.input_ids.append(torch.tensor(input_chunk))
            self.target_ids.append(torch.tensor(target_chunk))

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]


def create_dataloader(txt, tokenizer, batch_size=4, max_length=16, stride=8, shuffle=True, drop_last=True,
                      num_workers=0):
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=num_workers)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        b, num_tokens, d_in = x.shape
        keys = self.W_key(x)           # (b, num_tokens, d_out)
        queries = self.W_query(x)
        values = self.W_value(x)

        # split d_out into heads: (b, num_tokens, num_heads, head_dim), then heads first
        keys = keys.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        queries = queries.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = values.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

        attn_scores = queries @ keys.transpose(2, 3)
        mask_bool = self.mask.bool()[:num_tokens, :num_tokens]   # True above the diagonal: the future
        attn_scores.masked_fill_(mask_bool, -torch.inf)

        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)

        context_vec = (attn_weights @ values).transpose(1, 2)     # back to (b, num_tokens, num_heads, head_dim)
        context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)


class LayerNorm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        norm_x = (x - mean) / torch.sqrt(var + self.eps)
        return self.scale * norm_x + self.shift


class GELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            GELU(),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )

    def forward(self, x):
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = MultiHeadAttention(d_in=cfg["emb_dim"], d_out=cfg["emb_dim"], context_length=cfg["context_length"],
                                      num_heads=cfg["n_heads"], dropout=cfg["drop_rate"], qkv_bias=cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        shortcut = x                   # around the attention
        x = self.norm1(x)
        x = self.att(x)
        x = self.drop_shortcut(x)
        x = x + shortcut

        shortcut = x                   # around the feed-forward
        x = self.norm2(x)
        x = self.ff(x)
        x = self.drop_shortcut(x)
        return x + shortcut


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        batch_size, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = self.drop_emb(tok_embeds + pos_embeds)
        x = self.trf_blocks(x)
        x = self.final_norm(x)
        return self.out_head(x)


def text_to_token_ids(text, tokenizer):
    return torch.tensor(tokenizer.encode(text)).unsqueeze(0)   # a batch of one


def token_ids_to_text(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze(0).tolist())


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """The most likely next token, again and again."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]
        probas = torch.softmax(logits, dim=-1)
        idx_next = torch.argmax(probas, dim=-1, keepdim=True)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Sampled tokens: only the top_k logits kept, the rest made -inf, then divided by the temperature; a
    temperature of 0 takes the most likely token."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]
        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)
        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        if idx_next == eos_id:
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def calc_loss_batch(input_batch, target_batch, model, device):
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


def calc_loss_loader(data_loader, model, device, num_batches=None):
    total_loss = 0.
    if len(data_loader) == 0:
        return float("nan")
    elif num_batches is None:
        num_batches = len(data_loader)
    else:
        num_batches = min(num_batches, len(data_loader))
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total_loss / num_batches


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


def generate_and_print_sample(model, tokenizer, device, start_context):
    model.eval()
    context_size = model.pos_emb.weight.shape[0]
    encoded = text_to_token_ids(start_context, tokenizer).to(device)
    token_ids = generate_text_simple(model, encoded, max_new_tokens=30, context_size=context_size)
    print(f"sample argmax: {token_ids_to_text(token_ids, tokenizer)!r}")
    model.train()


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter,
                       start_context, tokenizer):
    train_losses, val_losses, track_tokens_seen = [], [], []
    tokens_seen, global_step = 0, -1
    for epoch in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            tokens_seen += input_batch.numel()
            global_step += 1
            print(f"step {global_step} loss {loss.item():.8f}")
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                print(f"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.8f}, Val loss {val_loss:.8f}")
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, track_tokens_seen


GPT_CONFIG = {
    "vocab_size": None,      # the text's characters, filled in below
    "context_length": 16,
    "emb_dim": 32,
    "n_heads": 4,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": False,
}

if __name__ == "__main__":
    torch.manual_seed(123)
    tokenizer = CharTokenizer(TEXT)
    cfg = dict(GPT_CONFIG, vocab_size=len(tokenizer.str_to_int))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    split_idx = int(0.9 * len(TEXT))
    train_data, val_data = TEXT[:split_idx], TEXT[split_idx:]
    train_loader = create_dataloader(train_data, tokenizer, batch_size=6, max_length=cfg["context_length"],
                                     stride=cfg["context_length"], drop_last=True, shuffle=True, num_workers=0)
    val_loader = create_dataloader(val_data, tokenizer, batch_size=6, max_length=cfg["context_length"],
                                   stride=cfg["context_length"], drop_last=False, shuffle=False, num_workers=0)
    print(f"{len(TEXT)} characters, vocabulary {cfg['vocab_size']}, {len(train_loader)} training batches, "
          f"{len(val_loader)} validation batches")

    model = GPTModel(cfg)
    model.to(device)
    print(f"parameters {sum(p.numel() for p in model.parameters())}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.1)
    train_losses, val_losses, tokens_seen = train_model_simple(
        model, train_loader, val_loader, optimizer, device, num_epochs=2, eval_freq=5, eval_iter=2,
        start_context="The ship", tokenizer=tokenizer)
    print(f"tokens seen {tokens_seen[-1]}")

    # saved and loaded back into a fresh model and optimizer, as one resumes training later
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict()},
               "model_and_optimizer.pth")
    checkpoint = torch.load("model_and_optimizer.pth", map_location=device, weights_only=True)
    model = GPTModel(cfg)
    model.load_state_dict(checkpoint["model_state_dict"])
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0005, weight_decay=0.1)
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    print(f"reloaded: train loss {calc_loss_loader(train_loader, model, device, num_batches=2):.8f}")
    input_batch, target_batch = next(iter(train_loader))   # one more step, from the optimizer's saved moments
    optimizer.zero_grad()
    loss = calc_loss_batch(input_batch, target_batch, model, device)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = calc_loss_batch(input_batch, target_batch, model, device)
    print(f"resumed: a step from loss {loss.item():.8f} to {after.item():.8f}")

    torch.manual_seed(123)
    model.eval()
    for temperature, top_k in ((1.4, 5), (0.7, None), (0.0, 3)):
        token_ids = generate(model, text_to_token_ids("The lamp", tokenizer).to(device), max_new_tokens=40,
                             context_size=cfg["context_length"], temperature=temperature, top_k=top_k)
        print(f"sample temperature={temperature} top_k={top_k}: {token_ids_to_text(token_ids, tokenizer)!r}")
