"""Fine-tuning a pretrained GPT as a classifier: who says this line, GLOUCESTER or DUKE VINCENTIO? (2-5 min)

    python examples/08_finetune_classifier.py [CHECKPOINT]
    python examples/08_finetune_classifier.py out-shakespeare-char/best.safetensors    # after the Quickstart

A small GPT is first pretrained on Tiny Shakespeare as a language model (or loaded from CHECKPOINT, a file that
`python -m tinygrad_llm train` wrote). Then a linear head on its final hidden states, pooled over each line, is
trained to tell the two speakers with the most lines apart, on whole speeches kept apart for testing. The same
architecture, freshly initialised, gets the same steps on the same batches: the difference in test accuracy is
what pretraining taught the trunk about Shakespeare's text. Last, a linear probe: only the heads learn, on the
frozen pretrained trunk and on a frozen random one, which asks how much the pretrained features alone know.
(Measured in benchmarks/RESULTS.md: for this task, at this scale, hardly more than random features do.)
The pretraining run's checkpoints go into examples/out/08_finetune_classifier/ (next to this file, ignored by git),
wherever the example is run from.
"""
import argparse
import time
from pathlib import Path

from tinygrad_llm.recipes.config import TrainConfig
from tinygrad_llm.recipes.finetune import compare_with_scratch, load_lm, pretrain, speaker_task
from tinygrad_llm.text.datasets import load_text, resolve_dataset

OUT = Path(__file__).resolve().parent / "out" / Path(__file__).stem   # examples/out/<this example>/
PRETRAIN = TrainConfig(n_layer=4, n_head=4, n_embd=64, block_size=64, batch_size=16, max_iters=600,
                       warmup_iters=50, lr_decay_iters=600, eval_interval=600, eval_iters=5,
                       out_dir=str(OUT))
STEPS, BATCH_SIZE, LR, PROBE_LR, POOLING = 400, 32, 3e-4, 1e-2, "mean"


def main(checkpoint):
    began = time.perf_counter()
    if checkpoint is not None:
        gpt, tokenizer = load_lm(checkpoint)
    else:
        print(f"pretraining a {PRETRAIN.n_layer}-layer GPT on Tiny Shakespeare for {PRETRAIN.max_iters} steps ...")
        gpt, tokenizer = pretrain(PRETRAIN)
    task = speaker_task(load_text(resolve_dataset()), tokenizer, gpt.config.block_size)
    a, b = task["speakers"]
    print(f"task: {a} (0) vs {b} (1); {len(task['train']['labels'])} train lines, "
          f"{len(task['test']['labels'])} test lines; {task['test']['labels'].mean():.1%} of test lines are {b}'s")
    probe = compare_with_scratch(gpt, task, STEPS, pooling=POOLING, train_trunk=False, batch_size=BATCH_SIZE,
                                 lr=PROBE_LR)
    accuracies = compare_with_scratch(gpt, task, STEPS, pooling=POOLING, batch_size=BATCH_SIZE, lr=LR)
    print(f"{POOLING} pooling, {STEPS} steps: fine-tuned test accuracy {accuracies['finetuned']:.1%}, "
          f"from scratch {accuracies['scratch']:.1%}")
    print(f"linear probe (trunk frozen, lr {PROBE_LR}): pretrained features {probe['finetuned']:.1%}, "
          f"random features {probe['scratch']:.1%}")
    print(f"done in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                        help="a checkpoint written by `python -m tinygrad_llm train` (default: pretrain one)")
    main(parser.parse_args().checkpoint)
