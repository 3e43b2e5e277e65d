"""The command line: `python -m tinygrad_llm train ...` and `python -m tinygrad_llm sample ...`
(also installed as the `tinygrad-llm` command)."""
import argparse
import sys

from .recipes.config import FIELDS, PRESETS


def _train_parser(commands):
    parser = commands.add_parser("train", help="train a GPT (default: the shakespeare-char-cpu preset)",
                                 description="Train a character-level GPT. Every setting of the preset can be "
                                             "overridden by its flag.")
    parser.add_argument("--preset", default="shakespeare-char-cpu", choices=sorted(PRESETS))
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT_DIR from last.safetensors (or best.safetensors)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run in OUT_DIR (checkpoints, metrics) and start again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float, "str": str}.get(field.type, field.type)
            parser.add_argument(flag, dest=name, type=kind, default=None, metavar=name.upper())


def _sample_parser(commands):
    parser = commands.add_parser("sample", help="generate text from a checkpoint")
    parser.add_argument("--ckpt", default="out-shakespeare-char/best.safetensors",
                        help="one of our checkpoints, or a Hugging Face GPT-2 directory (config.json, "
                             "model.safetensors, vocab.json, merges.txt)")
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--max-new-tokens", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=200)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="recompute every position at every step")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a sample before this text (repeatable), e.g. --stop $'\\n\\n'")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="load a checkpoint holding NaN or infinite weights (refused by default), to debug it")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinygrad-llm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _train_parser(commands)
    _sample_parser(commands)
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            from .recipes.train import train
            overrides = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
            train(PRESETS[args.preset].updated(**overrides), resume=args.resume, overwrite=args.overwrite,
                  progress=not args.no_progress)
        else:
            from .recipes.sample import sample

            shown = 0  # the sample being printed

            def show(i, piece):  # streamed: each piece as soon as it is generated
                nonlocal shown
                if i != shown:
                    print("\n---------------")
                    shown = i
                print(piece, end="", flush=True)

            sample(args.ckpt, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed,
                   args.num_samples, use_cache=not args.no_cache, device=args.device, stop=args.stop, on_text=show,
                   allow_nonfinite=args.allow_nonfinite)
            print()
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as e:
        # bad input: a one-line message naming the problem, not a traceback
        print(f"tinygrad-llm {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
