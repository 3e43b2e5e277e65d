"""Text in, ids out: the tokenizers (characters in char.py, GPT-2's byte-level BPE in bpe.py, BERT's WordPiece in
wordpiece.py) and the datasets (Tiny Shakespeare, seeded batches of a tokenized text, in datasets.py). Nothing here
knows tensors or models."""
