"""Generation speed: tokens/s of GPT.generate with and without the KV cache, batch 1, in one run.

Without the cache every step recomputes the whole context (up to block_size positions); with it, each step runs
one position through the model and attends to the cached keys and values. Speed does not depend on the weights,
so a randomly initialised model of the preset is used unless --ckpt names a trained one.

    python benchmarks/generate.py                                   # shakespeare-char-cpu size, 500 tokens
    python benchmarks/generate.py --preset shakespeare-char --tokens 300
"""
import argparse
import time

import numpy as np

from tinygrad_llm.engine import backend, rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.recipes.checkpoint import load_checkpoint, model_from_checkpoint
from tinygrad_llm.recipes.config import PRESETS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="shakespeare-char-cpu", choices=sorted(PRESETS))
    parser.add_argument("--ckpt", help="a trained checkpoint instead of a random model of the preset")
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py)
    if args.ckpt:
        model = model_from_checkpoint(load_checkpoint(args.ckpt))
    else:
        p = PRESETS[args.preset]
        rng.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=65, block_size=p.block_size, n_layer=p.n_layer, n_head=p.n_head,
                              n_embd=p.n_embd, bias=p.bias))
    model.eval()
    c = model.config
    print(f"model: {c.n_layer} layers, {c.n_head} heads, {c.n_embd} channels, block {c.block_size}; "
          f"{args.tokens} new tokens after a 1-token prompt, batch 1; median of {args.repeats}")
    rates = {}
    for use_cache in (True, False):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.generate(np.zeros((1, 1), dtype=np.int64), args.tokens, temperature=1.0,
                           generator=np.random.default_rng(0), use_cache=use_cache)
            times.append(time.perf_counter() - start)
        rates[use_cache] = args.tokens / float(np.median(times))
        print(f"{'with' if use_cache else 'without'} KV cache: {rates[use_cache]:8.0f} tokens/s")
    print(f"speed-up from the cache: {rates[True] / rates[False]:.2f}x")


if __name__ == "__main__":
    main()
