"""Byte-level BPE on Tiny Shakespeare: training time, encoding speed, compression, and agreement with transformers.

Trains a --vocab-size vocabulary (4,096 by default), encodes the whole text twice (the first pass fills the
per-chunk cache, the second finds every chunk there), checks the round trip, and, where transformers is
installed, builds its GPT2Tokenizer from our saved vocab.json and merges.txt and checks it gives the same ids.

    python benchmarks/bpe_train.py                      # the text found as `python -m tinygrad_llm train` finds it
    python benchmarks/bpe_train.py --data my.txt --vocab-size 8192
"""
import argparse
import tempfile
import time

from tinygrad_llm.text.bpe import BPETokenizer
from tinygrad_llm.text.datasets import load_text, resolve_dataset


def timed(fn, *args, **kwargs):
    """fn's result and the seconds it took."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="a UTF-8 text file (default: Tiny Shakespeare)")
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()
    text = load_text(resolve_dataset(args.data))
    n_bytes = len(text.encode("utf-8"))

    tokenizer, train_s = timed(BPETokenizer.train, text, args.vocab_size)
    print(f"train:  {tokenizer.vocab_size} tokens ({len(tokenizer.merges)} merges) from {n_bytes:,} bytes "
          f"in {train_s:.2f} s")
    ids, cold_s = timed(tokenizer.encode, text)
    _, warm_s = timed(tokenizer.encode, text)
    print(f"encode: {len(ids):,} tokens in {cold_s:.2f} s ({len(ids) / cold_s:,.0f} tokens/s) with an empty cache, "
          f"{warm_s:.2f} s ({len(ids) / warm_s:,.0f} tokens/s) with every chunk cached")
    print(f"compression: {n_bytes / len(ids):.3f} bytes per token")
    decoded, decode_s = timed(tokenizer.decode, ids)
    print(f"decode: {decode_s:.2f} s, round trip {'exact' if decoded == text else 'DIFFERENT'}")

    try:
        from transformers import GPT2Tokenizer
    except ImportError:
        print("transformers is not installed: the cross-check is skipped")
        return
    with tempfile.TemporaryDirectory() as directory:
        tokenizer.save(directory)
        hf, load_s = timed(GPT2Tokenizer.from_pretrained, directory)
    hf_ids, hf_s = timed(hf.encode, text)
    same = hf_ids == ids.tolist()
    print(f"transformers GPT2Tokenizer from our files: loaded in {load_s:.2f} s, encoded in {hf_s:.2f} s; "
          f"ids {'identical' if same else 'DIFFERENT'} on all {len(ids):,} tokens")


if __name__ == "__main__":
    main()
