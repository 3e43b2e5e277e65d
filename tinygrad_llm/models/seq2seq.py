"""An encoder–decoder transformer ("Attention Is All You Need"), pre-LayerNorm like our GPT, and a toy task.

Dimensions:  B batch, Ts source length, Tt target length (both ≤ max_len), C = n_embd, nh = n_head,
hs = C / nh, V = tgt_vocab_size.

    src (B, Ts) ─▶ tok + pos ─▶ n_layer × EncoderBlock ─▶ ln_f ─▶ memory (B, Ts, C)
    tgt_in (B, Tt) ─▶ tok + pos ─▶ n_layer × DecoderBlock(memory) ─▶ ln_f ─▶ lm_head ─▶ logits (B, Tt, V)

    EncoderBlock:  x = x + self_attn(ln_1(x), pad mask);  x = x + mlp(ln_2(x))
    DecoderBlock:  x = x + self_attn(ln_1(x), causal);  x = x + cross_attn(ln_2(x), memory, pad mask);
                   x = x + mlp(ln_3(x))

Padding: the source pads are masked out of every attention over the source (encoder self-attention and decoder
cross-attention), so no real position ever reads them. Target pads sit at the end of each row, where causal
attention keeps real positions from seeing them, and the loss skips them with ignore_index.

Teacher forcing: for a target y1..yn the decoder reads tgt_in = BOS y1..yn and is scored on tgt_out = y1..yn EOS.
"""
import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..engine import backend
from ..engine import functional as F
from ..engine.tensor import Tensor, no_grad
from .transformer import DecoderBlock, EncoderBlock, init_gpt2_weights, token_ids


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    max_len: int = 32          # the longest source or target sequence (the size of the position tables)
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    bias: bool = True          # read by the GPT's MLP

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"Seq2SeqConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        for name in ("src_vocab_size", "tgt_vocab_size", "max_len", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"Seq2SeqConfig: {name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"Seq2SeqConfig: dropout must be in [0, 1), got {self.dropout}")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.tgt_vocab_size:
                raise ValueError(f"Seq2SeqConfig: {name} {getattr(self, name)} is not a target token id "
                                 f"(tgt_vocab_size {self.tgt_vocab_size})")


class Seq2Seq(nn.Module):
    def __init__(self, config):
        self.config = config
        C = config.n_embd
        self.encoder = nn.ModuleDict(dict(
            wte=nn.Embedding(config.src_vocab_size, C), wpe=nn.Embedding(config.max_len, C),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([EncoderBlock(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(C, bias=config.bias)))
        self.decoder = nn.ModuleDict(dict(
            wte=nn.Embedding(config.tgt_vocab_size, C), wpe=nn.Embedding(config.max_len, C),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([DecoderBlock(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(C, bias=config.bias)))
        self.lm_head = nn.Linear(C, config.tgt_vocab_size, bias=False)
        self.lm_head.weight = self.decoder.wte.weight  # tied, as in the GPT
        self._init_weights()

    def _init_weights(self):
        # the GPT's initialisation; a decoder block adds three terms to its residual stream (self-attention,
        # cross-attention, MLP)
        init_gpt2_weights(self, residual_std=0.02 / math.sqrt(3 * self.config.n_layer))

    # ----- the two halves -----
    def _ids(self, ids, vocab_size, what):
        """Token ids as an integer array (B, T) on the model's device, checked against the vocabulary and max_len."""
        return token_ids(ids, self.lm_head.weight.device, vocab_size, self.config.max_len, f"Seq2Seq: {what}")

    @staticmethod
    def _embed(half, ids):                                       # (B, T) -> (B, T, C)
        positions = backend.module_for(half.wte.weight.device).arange(ids.shape[1])
        return half.drop(half.wte(ids) + half.wpe(positions))

    def encode(self, src):
        """src (B, Ts) -> (memory (B, Ts, C), src_mask (B, 1, 1, Ts): True at real tokens, False at pads)."""
        src = self._ids(src, self.config.src_vocab_size, "src")
        src_mask = (src != self.config.pad_id)[:, None, None, :]  # broadcasts over heads and queries
        x = self._embed(self.encoder, src)                        # (B, Ts, C)
        for block in self.encoder.h:
            x = block(x, src_mask)
        return self.encoder.ln_f(x), src_mask

    def decode(self, tgt_in, memory, src_mask):
        """tgt_in (B, Tt), memory (B, Ts, C), src_mask (B, 1, 1, Ts) -> logits (B, Tt, V)."""
        tgt_in = self._ids(tgt_in, self.config.tgt_vocab_size, "tgt_in")
        x = self._embed(self.decoder, tgt_in)                     # (B, Tt, C)
        for block in self.decoder.h:
            x = block(x, memory, src_mask)
        return self.lm_head(self.decoder.ln_f(x))                 # (B, Tt, V)

    def forward(self, src, tgt_in, tgt_out=None):
        """Teacher forcing: src (B, Ts), tgt_in (B, Tt) -> (logits (B, Tt, V), loss).
        With tgt_out (B, Tt), loss is the mean cross-entropy over its non-pad positions; else None."""
        logits = self.decode(tgt_in, *self.encode(src))           # (B, Tt, V)
        if tgt_out is None:
            return logits, None
        B, Tt, V = logits.shape
        tgt_out = self._ids(tgt_out, V, "tgt_out")
        if tgt_out.shape != (B, Tt):
            raise ValueError(f"Seq2Seq: tgt_out has shape {tgt_out.shape}, expected {(B, Tt)} like tgt_in")
        loss = F.cross_entropy(logits.reshape(B * Tt, V), tgt_out.reshape(B * Tt), ignore_index=self.config.pad_id)
        return logits, loss

    # ----- decoding -----
    def _next_log_probs(self, prefixes, memory, src_mask):
        """prefixes (N, t) (each starting with BOS) -> log-probabilities of the next token, float64 (N, V).
        PAD and BOS are never generated. (No KV cache: the decoder reruns on the whole prefix each step,
        which is simple and cheap for short outputs.)"""
        logits = self.decode(prefixes, memory, src_mask).numpy()[:, -1, :].astype(np.float64)  # (N, V)
        logits[:, [self.config.pad_id, self.config.bos_id]] = -np.inf
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    def greedy_decode(self, src, max_len):
        """src (B, Ts) -> B lists of token ids: at each step the most likely next token, until EOS (not
        included) or max_len tokens. Runs with no_grad."""
        eos = self.config.eos_id
        with no_grad():
            memory, src_mask = self.encode(src)
            out = np.full((memory.shape[0], 1), self.config.bos_id, dtype=np.int64)  # (B, 1)
            done = np.zeros(memory.shape[0], dtype=bool)
            for _ in range(max_len):
                next_id = self._next_log_probs(out, memory, src_mask).argmax(axis=-1)  # (B,)
                next_id = np.where(done, eos, next_id)              # finished rows just repeat EOS
                out = np.concatenate([out, next_id[:, None]], axis=1)
                done |= next_id == eos
                if done.all():
                    break
        return [_until_eos(row[1:], eos) for row in out]

    def beam_search(self, src, beam_size, max_len, length_penalty=1.0):
        """One source sequence, src (Ts,) or (1, Ts) -> its best token list (EOS not included). Runs with no_grad.

        Keeps the beam_size best prefixes by total log-probability. Each step extends every live prefix by every
        token and keeps the beam_size best extensions; an extension ending in EOS is finished and leaves the
        beam. Search stops when beam_size hypotheses have finished, no prefix is live, or after max_len tokens
        (the live prefixes then count as finished). The answer is the finished hypothesis with the best
            score = log p(tokens) / len(tokens) ** length_penalty      (len counts EOS)
        length_penalty 0 ranks by plain log-probability; larger values favour longer outputs. beam_size 1 is
        greedy decoding."""
        if beam_size < 1:
            raise ValueError(f"beam_search: beam_size must be at least 1, got {beam_size}")
        src = np.asarray(src.data if isinstance(src, Tensor) else src).reshape(1, -1)
        eos = self.config.eos_id
        with no_grad():
            memory, src_mask = self.encode(src)                     # (1, Ts, C), (1, 1, 1, Ts)
            beams = np.full((1, 1), self.config.bos_id, dtype=np.int64)  # (N, t): the live prefixes
            beam_scores = np.zeros(1)                               # (N,): their log-probabilities
            finished = []                                           # (score, tokens)
            for step in range(1, max_len + 1):
                N = beams.shape[0]
                repeated = Tensor(memory.data.repeat(N, axis=0))    # (N, Ts, C)
                total = beam_scores[:, None] + self._next_log_probs(beams, repeated, src_mask)  # (N, V)
                best = np.argsort(-total, axis=None, kind="stable")[:beam_size]  # flat indices into (N, V)
                best = best[np.isfinite(total.ravel()[best])]
                rows, tokens = np.unravel_index(best, total.shape)
                ends = (tokens == eos) | (step == max_len)           # these extensions finish here
                for row, token in zip(rows[ends], tokens[ends]):
                    finished.append((total[row, token] / step ** length_penalty, np.append(beams[row, 1:], token)))
                rows, tokens = rows[~ends], tokens[~ends]            # the rest stay live
                if len(finished) >= beam_size or len(rows) == 0:
                    break
                beams = np.concatenate([beams[rows], tokens[:, None]], axis=1)  # (N', t + 1)
                beam_scores = total[rows, tokens]
        _, best_tokens = max(finished, key=lambda pair: pair[0])
        return _until_eos(best_tokens, eos)


def _until_eos(ids, eos):
    """The ids before the first EOS, as a list of ints."""
    ids = [int(i) for i in ids]
    return ids[:ids.index(eos)] if eos in ids else ids


# ---------------------------------------------------------------- a toy task: reverse a string

class ReverseTask:
    """Strings of min_len..max_len letters from `alphabet`, each mapped to itself reversed ("abc" -> "cba").

    Token ids: 0 PAD, 1 BOS, 2 EOS, then one per letter; source and target share them. `train` and `test` are
    disjoint lists of distinct strings drawn with `seed` (a length uniform in min_len..max_len, then letters
    uniform), so test accuracy is measured on strings never trained on. Where a length has few strings (all
    strings of one letter, say) the training set takes them first, and the test set may hold none of them.
    """
    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, alphabet="abcdefgh", min_len=1, max_len=8, n_train=20000, n_test=500, seed=0):
        if not 1 <= min_len <= max_len:
            raise ValueError(f"ReverseTask: need 1 <= min_len <= max_len, got {min_len}, {max_len}")
        self.alphabet, self.min_len, self.max_len = alphabet, min_len, max_len
        self.stoi = {ch: i + 3 for i, ch in enumerate(alphabet)}
        self.vocab_size = 3 + len(alphabet)
        generator = np.random.default_rng(seed)
        self.train = self._distinct_strings(n_train, generator, exclude=set())
        self.test = self._distinct_strings(n_test, generator, exclude=set(self.train))

    def _distinct_strings(self, n, generator, exclude):
        """Up to n distinct random strings not in `exclude` (fewer if the draws keep repeating)."""
        found = {}
        for _ in range(20 * n):
            if len(found) == n:
                break
            length = generator.integers(self.min_len, self.max_len + 1)
            s = "".join(generator.choice(list(self.alphabet), size=length))
            if s not in exclude:
                found[s] = None
        return list(found)

    def target(self, s):
        return s[::-1]

    def encode(self, s):
        return [self.stoi[ch] for ch in s]

    def decode(self, ids):
        return "".join(self.alphabet[i - 3] for i in ids if i >= 3)

    def batch(self, strings):
        """Strings -> (src (B, Ts), tgt_in (B, Tt), tgt_out (B, Tt)), int64, right-padded with PAD:
        src = the letters, tgt_in = BOS + reversed letters, tgt_out = reversed letters + EOS."""
        B, Ts = len(strings), max(len(s) for s in strings)
        src = np.full((B, Ts), self.PAD, dtype=np.int64)
        tgt_in = np.full((B, Ts + 1), self.PAD, dtype=np.int64)
        tgt_out = np.full((B, Ts + 1), self.PAD, dtype=np.int64)
        for b, s in enumerate(strings):
            x, y = self.encode(s), self.encode(self.target(s))
            src[b, :len(x)] = x
            tgt_in[b, :len(y) + 1] = [self.BOS] + y
            tgt_out[b, :len(y) + 1] = y + [self.EOS]
        return src, tgt_in, tgt_out

    def get_batch(self, batch_size, generator):
        """A random batch of training strings (drawn with `generator`), as `batch` returns it."""
        picks = generator.integers(0, len(self.train), batch_size)
        return self.batch([self.train[i] for i in picks])

    def config(self, **options):
        """A Seq2SeqConfig for this task's vocabulary and lengths; options set the model's size."""
        return Seq2SeqConfig(src_vocab_size=self.vocab_size, tgt_vocab_size=self.vocab_size,
                             max_len=self.max_len + 1, pad_id=self.PAD, bos_id=self.BOS, eos_id=self.EOS,
                             **options)


def exact_match(model, task, strings, beam_size=None, batch_size=256):
    """The fraction of `strings` whose decoded output is exactly the target: greedy decoding in batches, or
    beam search (one string at a time) when beam_size is given."""
    correct = 0
    for i in range(0, len(strings), batch_size):
        chunk = strings[i:i + batch_size]
        if beam_size is None:
            outputs = model.greedy_decode(task.batch(chunk)[0], max_len=task.max_len + 1)
        else:
            outputs = [model.beam_search([task.encode(s)], beam_size, max_len=task.max_len + 1) for s in chunk]
        correct += sum(task.decode(out) == task.target(s) for out, s in zip(outputs, chunk))
    return correct / len(strings)
