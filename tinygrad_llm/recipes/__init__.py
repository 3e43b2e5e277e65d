"""The programs on top: what a user runs (`python -m tinygrad_llm train|sample`) and the files they read and write.

    config.py       the training presets and every option as a dataclass field (each one a command-line flag)
    train.py        the training loop: evaluation, metrics, checkpoints, resume
    sample.py       text from a checkpoint or a GPT-2 directory, streamed
    checkpoint.py   our checkpoint format (one safetensors file: weights, optimizer moments, metadata)
    pretrained.py   Hugging Face GPT-2 directories in and out
    bert_pretrained.py  Hugging Face BERT directories in and out
    sentence_embeddings.py  sentence-transformers' directories: one vector per sentence
    finetune.py     a classification head on a pretrained GPT
    bert_finetune.py  a classification head on a pretrained BERT
    distill.py      knowledge distillation from a teacher GPT into a student
    bert_distill.py  a small student BERT trained on a teacher's sentence embeddings
"""
