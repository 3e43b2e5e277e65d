"""The command line: `python -m tinygrad_llm train ...`, `python -m tinygrad_llm sample ...` and `python -m
tinygrad_llm run SCRIPT.py ...` (also installed as the `tinygrad-llm` command)."""
import argparse
import shlex
import signal
import sys
from pathlib import Path

from . import __version__, distributed
from .recipes.config import DEFAULT_PRESET, FIELDS, PRESETS, ConfigError, TrainConfig, resume_changes

SIGNALLED = 128                           # plus the signal's number: a signal's exit status, as shells report it
INTERRUPTED = SIGNALLED + signal.SIGINT   # 130, after Ctrl-C (143 after SIGTERM)
DIVERGED = 3                              # a training run's loss or gradient norm turned NaN or infinite


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help line ends with its default, written so that it can be read: none for an empty default
    (its help says what empty means), and a string with a newline or another unprintable character in Python's
    quotes ('\\n', where argparse would break the line)."""

    def _get_help_string(self, action):
        default = action.default
        if default == "":
            return action.help
        if isinstance(default, str) and not default.isprintable():
            return f"{action.help} (default: {repr(default).replace('%', '%%')})"   # argparse fills in %(...)s
        return super()._get_help_string(action)


def _train_parser(commands, preset):
    parser = commands.add_parser(
        "train", help=f"train a GPT (default: the {DEFAULT_PRESET} preset)", allow_abbrev=False,
        formatter_class=HelpFormatter,
        description=f"Train a GPT. Every setting of the preset can be overridden by its flag. The defaults shown "
                    f"are those of --preset {preset}; give another --preset before --help to see its own.",
        epilog=f"Exit status: 0 when the run is done; 2 when a flag, a setting or a file is refused; {DIVERGED} when "
               f"the run diverged (a NaN or infinite loss or gradient norm: the last checkpoint is kept as it was); "
               f"{INTERRUPTED} after Ctrl-C, {SIGNALLED + signal.SIGTERM} after SIGTERM.")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                        help="the settings to start from (with --resume, each of its settings counts as given)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out-dir from last.safetensors (or best.safetensors) with its own "
                             "settings; a flag given changes the length, evaluation, logging, learning-rate "
                             "schedule, clipping, telemetry or device, and is refused for the others")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run in --out-dir (checkpoints, metrics) and start again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help=f"train on through a NaN or infinite loss, saying so once, to study the blow-up "
                             f"(checkpoints may then hold NaN); by default the run stops there, exit status "
                             f"{DIVERGED}")
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(PRESETS[preset], name)
        if field.type is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default,
                                help=field.metadata["help"])
        else:
            parser.add_argument(flag, dest=name, type=field.type, default=default, metavar=name.upper(),
                                help=field.metadata["help"])
    return parser


def _sample_parser(commands):
    parser = commands.add_parser("sample", help="generate text from a checkpoint", allow_abbrev=False,
                                 formatter_class=HelpFormatter,
                                 description="Generate text from a checkpoint, printed as it is made.")
    parser.add_argument("--ckpt", default="out-shakespeare-char/best.safetensors",
                        help="one of our checkpoints, or a Hugging Face GPT-2 directory (config.json, "
                             "model.safetensors, vocab.json, merges.txt)")
    parser.add_argument("--prompt", default="\n", help="the text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=500, help="tokens to generate per sample")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="divides the logits: below 1 sharper, above 1 flatter; 0 always takes the likeliest "
                             "token")
    parser.add_argument("--top-k", type=int, default=200, help="draw from the k likeliest tokens only")
    parser.add_argument("--top-p", type=float, default=None,
                        help="draw from the likeliest tokens whose probabilities add up to p (nucleus sampling); "
                             "None: no cut")
    parser.add_argument("--seed", type=int, default=1337, help="seeds the draws")
    parser.add_argument("--num-samples", type=int, default=1, help="samples to generate")
    parser.add_argument("--no-cache", action="store_true", help="recompute every position at every step")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a sample before this text (repeatable), e.g. --stop $'\\n\\n'")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="load a checkpoint holding NaN or infinite weights (refused by default), to debug it")


def _run_parser(commands):
    parser = commands.add_parser(
        "run", help="run a PyTorch script unchanged, with torch resolving to tinygrad_llm", allow_abbrev=False,
        description="Run SCRIPT as `python SCRIPT ARGS...` would, with `import torch` (and its submodules) giving "
                    "tinygrad_llm, for this process only. A PyTorch API that tinygrad_llm lacks stops the script "
                    "with one line naming it and the script's line (docs/torch_coverage.md lists what is here).")
    parser.add_argument("--profile", action="store_true",
                        help="time every op of the script (tl.profile); the table is printed at the end")
    parser.add_argument("--graph", metavar="FILE",
                        help="draw the graph of the first backward into FILE (tl.viz): a .dot file, or .png, .svg, "
                             ".pdf with Graphviz's dot")
    parser.add_argument("--detect-anomaly", action="store_true",
                        help="stop at the first op that makes a NaN or an infinity, naming it (tl.detect_anomaly)")
    parser.add_argument("script", help="the PyTorch script")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")


def _attach_negative_values(argv):
    """`--learning-rate -1e-3` as `--learning-rate=-1e-3`. argparse (before Python 3.13) takes a word that starts
    with '-' for a flag unless it looks like a plain negative number, so `-1e-3`, `-inf` and `-nan` never reached
    the checks that say what is wrong with them."""
    joined = []
    for word in argv:
        if joined and joined[-1].startswith("--") and "=" not in joined[-1] and _is_negative_number(word):
            joined[-1] += "=" + word
        else:
            joined.append(word)
    return joined


def _is_negative_number(word):
    try:
        float(word)
    except ValueError:
        return False
    return word.startswith("-")


def _preset_in(argv):
    """The --preset that argv names (the last one, as argparse takes it), whose settings the flags default to."""
    preset = DEFAULT_PRESET
    for word, following in zip(argv, argv[1:] + [""]):
        if word == "--preset":
            preset = following
        elif word.startswith("--preset="):
            preset = word.partition("=")[2]
    return preset if preset in PRESETS else DEFAULT_PRESET  # a wrong name is argparse's error to report


def _given(train_parser, words):
    """The settings that `words` (train's arguments, parsed once already) name themselves, and "preset" if named:
    argparse fills in the preset's for the others, which a resumed run must not take for the user's. (argparse
    sets no default where the namespace has the name already: None, which no flag gives.)"""
    names = [*FIELDS, "preset"]
    typed = vars(train_parser.parse_args(words, argparse.Namespace(**dict.fromkeys(names))))
    return {name: typed[name] for name in names if typed[name] is not None}


def _resumed_config(given):
    """--resume: the settings of the run in --out-dir (its checkpoint's), changed by the flags given; one that would
    change a FIXED setting (config.py) is refused here, before the data is read. --preset given counts as each of
    its settings given, so that the command that started a run continues it with --resume."""
    from .recipes.train import run_config

    settings = {name: value for name, value in given.items() if name in FIELDS}
    preset = given.get("preset")
    run = run_config(settings.get("out_dir", PRESETS[preset or DEFAULT_PRESET].out_dir))
    wanted = (PRESETS[preset] if preset else run).updated(**{"out_dir": run.out_dir, **settings})
    try:
        resume_changes(run, wanted)
    except ConfigError as e:
        if preset:
            raise ConfigError("resume", f"--preset {preset} with the flags given: {e.template}") from None
        raise
    return wanted


def _resume_command(argv, ranks):
    """The command that continues an interrupted run: the same flags, with --resume (on any number of ranks)."""
    kept = [word for word in argv if word not in ("--resume", "--overwrite")]
    launcher = ["mpiexec", "-n", str(ranks)] if ranks > 1 else []
    return shlex.join([*launcher, "python", "-m", "tinygrad_llm", *kept, "--resume"])


def main(argv=None):
    """The command line (`python -m tinygrad_llm`, the `tinygrad-llm` command); returns the exit status. From its
    first statement on, Ctrl-C ends it with one line, never a traceback: in start-up, imports and sampling (a
    training run saves first, train.py). Only what comes before is beyond reach: Python's start-up and the import
    of the package (NumPy), which `python -m` and the command make before running this module."""
    try:
        return _command(argv)
    except KeyboardInterrupt:
        print("\ntinygrad-llm: interrupted", file=sys.stderr)
        return INTERRUPTED


def _command(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] != ["run"]:   # a script's arguments go to it as given
        argv = _attach_negative_values(argv)
    parser = argparse.ArgumentParser(prog="tinygrad-llm", description=__doc__, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = _train_parser(commands, _preset_in(argv))
    _sample_parser(commands)
    _run_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "run":   # the script's errors are its own: none of those below is caught here
        from .as_torch.run import run
        return run(args.script, args.args, args.profile, args.graph, args.detect_anomaly)
    try:
        if args.command == "train":
            return _train(args, argv, _given(train_parser, argv[1:]))
        _sample(args)
        return 0
    except ConfigError as e:  # a setting that cannot work, named by its flag
        return _failed(args.command, e.as_flags(), 2)
    except (ValueError, RuntimeError, KeyError) as e:
        return _failed(args.command, str(e), 2)  # bad input: a one-line message naming the problem, no traceback
    except OSError as e:  # the machine's refusal: a full disk, a file or directory that cannot be written or read
        return _failed(args.command, _system_error(e), 2)


def _system_error(e):
    """An OSError in one line: ours give the whole message (naming the path and the cause), the system's the path
    and its words for the cause ("out/metrics.jsonl: Read-only file system")."""
    if e.strerror is None:
        return str(e)
    return f"{e.filename}: {e.strerror}" if e.filename is not None else e.strerror


def _failed(command, message, code):
    """Print the one-line error and return `code`. Under mpiexec, every rank is ended with it: a rank that failed
    alone would leave the others waiting for it in their next all-reduce."""
    world = distributed.current()
    rank = f"[rank {world.rank}] " if world is not None and world.rank > 0 else ""
    print(f"{rank}tinygrad-llm {command}: error: {message}", file=sys.stderr, flush=True)
    if world is not None:
        world.abort(code)
    return code


def _train(args, argv, given):
    from .recipes.run_dir import CHECKPOINTS  # here, not above: imported under main's Ctrl-C handling
    from .recipes.train import Diverged, train

    world = distributed.init()  # under mpiexec: this rank of the run; rank 0 alone speaks
    if args.resume and not args.overwrite:  # (both: train() refuses the pair)
        cfg = _resumed_config(given)
    else:
        cfg = TrainConfig(**{name: getattr(args, name) for name in FIELDS})  # checked whole: ConfigError
    say = (lambda line: print(line, file=sys.stderr)) if world.rank == 0 else (lambda line: None)
    for doubt in cfg.doubts():
        say(f"tinygrad-llm train: warning: {doubt.as_flags()}")
    try:
        result = train(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                       allow_nonfinite=args.allow_nonfinite)
    except Diverged as e:  # the same iteration on every rank: all end here, none waits
        say(f"tinygrad-llm train: stopped: {e} (--allow-nonfinite trains on through it)")
        return DIVERGED
    except KeyboardInterrupt:  # the second Ctrl-C, or one before training began
        say("\ntinygrad-llm train: stopped at once")
        saved = Path(cfg.out_dir, CHECKPOINTS[0])
        if saved.is_file():
            say(f"{saved} holds the last checkpoint; to continue: {_resume_command(argv, world.size)}")
        world.abort(INTERRUPTED)
        return INTERRUPTED
    if result["interrupted"]:
        say(f"to continue: {_resume_command(argv, world.size)}")
        return SIGNALLED + result["signal"]
    return 0


def _sample(args):
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


if __name__ == "__main__":
    sys.exit(main())
