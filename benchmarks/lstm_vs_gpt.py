"""A character-level LSTM against a GPT of about the same parameter count, each trained on Tiny Shakespeare for
the same wall-clock time, on this engine (CPU).

    python benchmarks/lstm_vs_gpt.py --seconds 120

Both: batch B × T characters, AdamW (weight decay 0.1 on matrices), lr warmup + cosine over the time budget
(the schedule follows elapsed time, since the step count is not known in advance), gradient clipping at 1.0.
The GPT trains on random windows of T characters; the LSTM on B contiguous streams cut into chunks of T with the
state carried (detached) between chunks, truncated BPTT, the way recurrent models are trained. Both are scored on
the same fixed windows of the validation split, the LSTM starting each window from a zero state, so each model
sees exactly the T characters of the window. Reported: parameters, steps, tokens seen, val loss.
"""
import argparse
import math
import time

import numpy as np

from tinygrad_llm import manual_seed, no_grad
from tinygrad_llm.engine import backend
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.models.rnn import CharLSTM, detach_state
from tinygrad_llm.optim import AdamW, clip_grad_norm_, set_lr, warmup_cosine_lr
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import TextDataset, load_text, resolve_dataset

SCHEDULE_POINTS = 1000  # the time budget is mapped onto this many schedule "steps"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="training time for each model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block-size", type=int, default=64, help="T: characters per window or chunk")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (both models)")
    parser.add_argument("--n-layer", type=int, default=2, help="GPT layers")
    parser.add_argument("--n-embd", type=int, default=64, help="GPT width; the LSTM's embedding is half of it")
    parser.add_argument("--eval-batches", type=int, default=20)
    parser.add_argument("--data", default=None, help="a text file (default: Tiny Shakespeare)")
    return parser.parse_args()


def lstm_hidden_size_for(n_params, vocab_size, n_embd):
    """The hidden size H whose CharLSTM has the parameter count closest to n_params:
    V·E (embedding) + 4H(E + H + 2) (LSTM) + (H + 1)·V (head)."""
    def count(H):
        return vocab_size * n_embd + 4 * H * (n_embd + H + 2) + (H + 1) * vocab_size
    return min(range(1, 2048), key=lambda H: abs(count(H) - n_params))


def optimizer_for(model, lr):
    params = list(model.parameters())
    return AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=lr)


def train_for(seconds, model, next_batch, lr):
    """Train until `seconds` have passed; next_batch() -> (x, y, state) and forward gives (.., loss, [state]).
    Returns the number of steps done."""
    optimizer = optimizer_for(model, lr)
    step, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        progress = int(SCHEDULE_POINTS * elapsed / seconds)
        set_lr(optimizer, warmup_cosine_lr(progress, max_lr=lr, min_lr=lr / 10, warmup_steps=20,
                                           decay_steps=SCHEDULE_POINTS))
        loss = next_batch(model)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
    return step


@no_grad()
def val_loss(model, batches):
    """Mean loss over the fixed validation windows (the LSTM from a zero state in each)."""
    return float(np.mean([model(x, y)[1].item() for x, y in batches]))


def main():
    args = parse_args()
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py)
    B, T = args.batch_size, args.block_size
    text = load_text(resolve_dataset(args.data))
    tokenizer = CharTokenizer.from_text(text)
    dataset = TextDataset(text, tokenizer)
    V = tokenizer.vocab_size
    val_generator = np.random.default_rng(1234)
    val_batches = [dataset.get_batch("val", B, T, val_generator) for _ in range(args.eval_batches)]

    manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=args.n_layer, n_head=4, n_embd=args.n_embd))
    gpt_params = gpt.num_params(non_embedding=False)
    lstm_embd = args.n_embd // 2
    manual_seed(0)
    lstm = CharLSTM(V, n_embd=lstm_embd, hidden_size=lstm_hidden_size_for(gpt_params, V, lstm_embd))

    train_generator = np.random.default_rng(0)

    def gpt_batch(model):
        x, y = dataset.get_batch("train", B, T, train_generator)
        return model(x, y)[1]

    streams = dataset.splits["train"][:len(dataset.splits["train"]) // B * B].reshape(B, -1).astype(np.int64)
    carried = {"state": None, "position": 0}

    def lstm_batch(model):
        if carried["position"] + T + 1 > streams.shape[1]:
            carried.update(state=None, position=0)
        p = carried["position"]
        _, loss, state = model(streams[:, p:p + T], streams[:, p + 1:p + T + 1], carried["state"])
        carried.update(state=detach_state(state), position=p + T)  # truncated BPTT
        return loss

    print(f"Tiny Shakespeare, vocab {V}; B={B}, T={T}, peak lr {args.lr}, {args.seconds:.0f} s of training each; "
          f"val loss over {args.eval_batches} fixed batches; uniform guess ln(V) = {math.log(V):.3f}")
    print(f"{'model':<40} {'params':>9} {'steps':>7} {'tokens':>10} {'tok/s':>7} {'val loss':>9}")
    for name, model, next_batch in (
            (f"GPT (n_layer={args.n_layer}, n_embd={args.n_embd}, n_head=4)", gpt, gpt_batch),
            (f"CharLSTM (n_embd={lstm_embd}, hidden={lstm.lstm.hidden_size})", lstm, lstm_batch)):
        steps = train_for(args.seconds, model, next_batch, args.lr)
        tokens = steps * B * T
        params = model.num_params(non_embedding=False) if isinstance(model, GPT) else model.num_params()
        print(f"{name:<40} {params:>9,} {steps:>7} {tokens:>10,} {tokens / args.seconds:>7.0f} "
              f"{val_loss(model, val_batches):>9.4f}", flush=True)


if __name__ == "__main__":
    main()
