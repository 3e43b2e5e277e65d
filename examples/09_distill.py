"""Distillation: a 1-layer student GPT learns from a 4-layer teacher's softened next-token distributions
(about 2 min).

    python examples/09_distill.py [TEACHER_CHECKPOINT]

The teacher is pretrained on Tiny Shakespeare (or loaded from TEACHER_CHECKPOINT, written by
`python -m tinygrad_llm train` with the character tokenizer and a block size of at least 64). Two students start
from the same weights and see the same batches for the same steps: one trained on
alpha · T² · KL(teacher/T ‖ student/T) + (1 − alpha) · CE, one on the cross-entropy alone. Their validation
losses (plain cross-entropy) are printed side by side. The teacher's checkpoints go into examples/out/09_distill/
(next to this file, ignored by git), wherever the example is run from.
"""
import argparse
import time
from pathlib import Path

from tinygrad_llm.models.gpt import GPTConfig
from tinygrad_llm.recipes.config import TrainConfig
from tinygrad_llm.recipes.distill import compare_with_alone, val_loss
from tinygrad_llm.recipes.finetune import load_lm, pretrain
from tinygrad_llm.text.datasets import TextDataset, load_text, resolve_dataset

OUT = Path(__file__).resolve().parent / "out" / Path(__file__).stem   # examples/out/<this example>/
TEACHER = TrainConfig(n_layer=4, n_head=4, n_embd=64, block_size=64, batch_size=16, max_iters=600,
                      warmup_iters=50, lr_decay_iters=600, eval_interval=600, eval_iters=5,
                      out_dir=str(OUT))
STUDENT = dict(n_layer=1, n_head=2, n_embd=32, block_size=64)
STEPS = 400
OPTIONS = dict(temperature=2.0, alpha=0.5, batch_size=16, block_size=64, lr=3e-3, eval_interval=100,
               eval_iters=10)


def main(teacher_checkpoint):
    began = time.perf_counter()
    if teacher_checkpoint is not None:
        teacher, tokenizer = load_lm(teacher_checkpoint)
    else:
        print(f"pretraining the {TEACHER.n_layer}-layer teacher for {TEACHER.max_iters} steps ...")
        teacher, tokenizer = pretrain(TEACHER)
    dataset = TextDataset(load_text(resolve_dataset()), tokenizer)
    teacher_loss = val_loss(teacher, dataset, OPTIONS["batch_size"], OPTIONS["block_size"], OPTIONS["eval_iters"])
    print(f"teacher: {teacher.num_params() / 1e3:.0f}k parameters, val loss {teacher_loss:.4f}")
    student_config = GPTConfig(vocab_size=tokenizer.vocab_size, **STUDENT)
    curves = compare_with_alone(student_config, teacher, dataset, STEPS, **OPTIONS)
    print(f"student: {student_config.n_layer} layer, n_embd {student_config.n_embd}; "
          f"T = {OPTIONS['temperature']}, alpha = {OPTIONS['alpha']}")
    print(f"{'step':>6} {'distilled':>10} {'alone':>10}")
    for (step, distilled), (_, alone) in zip(curves["distilled"], curves["alone"]):
        print(f"{step:>6} {distilled:>10.4f} {alone:>10.4f}")
    print(f"done in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher_checkpoint", nargs="?", metavar="TEACHER_CHECKPOINT",
                        help="a checkpoint written by `python -m tinygrad_llm train` (default: pretrain a teacher)")
    main(parser.parse_args().teacher_checkpoint)
