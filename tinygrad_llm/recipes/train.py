"""Training: the loop that turns text into a GPT, with evaluation, metrics, checkpoints and resume.

    text ─▶ tokenizer (characters or BPE) ─▶ ids ─▶ batches (seeded per iteration) ─▶ GPT ─▶ cross-entropy ─▶ backward
         ─▶ clip_grad_norm_ ─▶ AdamW (lr from warmup + cosine) ─▶ metrics.jsonl, progress bar
         ─▶ every eval_interval: train/val loss ─▶ last.safetensors (always), best.safetensors (if val improved)

Every random draw is reproducible: the batch of iteration i comes from a generator seeded with (seed, i), and
dropout's generator state is saved in each checkpoint, so `--resume` continues bit for bit. A resumed run keeps the
settings its checkpoint holds (`run_config`); those config.py marks CHANGEABLE may change, each change said. A run
owns its out-dir while it lives (run_dir.py): it is locked, and a previous run there is continued (`--resume`) or
deleted (`--overwrite`), never overwritten by accident; a kill at any moment leaves checkpoints that load, and
resumes. Ctrl-C ends the run at the end of the step under way, after saving that iteration (a second Ctrl-C stops
at once). A run that blows up (a non-finite loss or gradient norm) stops with Diverged before the update that would
spread it, so that no checkpoint ever holds a NaN (unless it is allowed to go on, to study the blow-up).
"""
import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import distributed
from ..engine import backend, rng, threads
from ..engine.tensor import no_grad
from ..models.gpt import GPT, GPTConfig
from ..optim import AdamW, clip_grad_norm_, set_lr, warmup_cosine_lr
from ..text.bpe import BPETokenizer
from ..text.char import CharTokenizer
from ..text.datasets import EVAL_STREAM, TRAIN_STREAM, TextDataset, batch_generator, load_text, resolve_dataset
from ..tools.telemetry import Telemetry
from ..tools.telemetry_plots import plot_telemetry
from .checkpoint import load_checkpoint, restore, save_checkpoint
from .checkpoint_schema import CheckpointError
from .config import FIELDS, ConfigError, TrainConfig, resume_changes
from .run_dir import METRICS, TELEMETRY, check_out_dir, claim_out_dir, trim_metrics


def build_tokenizer(cfg, text, log):
    """The run's tokenizer: the text's characters, or a byte-level BPE trained on its first 90% (the training
    split: the validation text must not shape the vocabulary). Training is deterministic, so a resumed run
    rebuilds exactly the tokenizer its checkpoint holds."""
    if cfg.tokenizer == "char":
        return CharTokenizer.from_text(text)
    began = time.perf_counter()
    tokenizer = BPETokenizer.train(text[:int(0.9 * len(text))], cfg.bpe_vocab_size)
    log(f"trained a {tokenizer.vocab_size}-token BPE in {time.perf_counter() - began:.1f} s")
    return tokenizer


def build_optimizer(model, cfg):
    """AdamW with weight decay on the 2-D weights (matmuls, embeddings) only: decaying biases and LayerNorm gains
    toward 0 would only fight the normalisation."""
    params = list(model.parameters())
    return AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                 lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))


def learning_rate(cfg, iteration):
    if not cfg.decay_lr:
        return cfg.learning_rate
    return warmup_cosine_lr(iteration, max_lr=cfg.learning_rate, min_lr=cfg.min_lr,
                            warmup_steps=cfg.warmup_iters, decay_steps=cfg.lr_decay_iters)


def train(cfg, resume=False, overwrite=False, progress=True, log=None, allow_nonfinite=False):
    """Train a GPT as `cfg` says; returns {"best_val_loss", "iterations", "seconds", "out_dir", "interrupted",
    "signal"}.
    `resume`: continue the run in cfg.out_dir from its last checkpoint (else its best), with cfg's settings:
    its FIXED ones (config.py) must be the run's, else ConfigError names them (`run_config(out_dir)` gives all of
    the run's settings, to change with .updated(max_iters=...)); a CHANGEABLE one that differs applies from there
    on, said in a line. `overwrite`: delete the run there and start again; with neither, a directory holding a
    run is refused (run_dir.py).
    `log` receives every line of news (default: printed above the progress bar). Ctrl-C or SIGTERM stops the run
    cleanly: the iteration reached is saved to last.safetensors, "interrupted" is True in what is returned and
    "signal" the signal's number (None for a run that ran to its end). A non-finite loss or gradient norm raises
    Diverged, naming the iteration, with the last checkpoint kept as it was; `allow_nonfinite` trains on instead
    (saying so once), as before this check, to study the blow-up.
    Under `mpiexec -n N`, the N ranks share each batch (distributed.py) and rank 0 alone logs and writes.
    cfg.blas_on_pool holds for the run, and is undone after it."""
    with threads.using_blas_on_pool(cfg.blas_on_pool):
        return _train(cfg, resume, overwrite, progress, log, allow_nonfinite)


def _train(cfg, resume, overwrite, progress, log, allow_nonfinite):
    from tqdm import tqdm  # imported here: only training draws a progress bar

    backend.reuse_freed_memory()  # each step frees and makes again the same large arrays (backend.py says why)
    world = distributed.init()
    main_process = world.rank == 0  # under mpiexec every rank computes every step; rank 0 alone logs and writes
    log = (tqdm.write if log is None else log) if main_process else _silent
    out_dir = Path(cfg.out_dir)
    resume_from = check_out_dir(out_dir, resume, overwrite)  # refused at once, before any work
    tokenizer, dataset, model_config = _prepare(cfg, world, log)  # the rest that can be refused, before the out-dir
    claim = claim_out_dir(out_dir, resume, overwrite, log) if main_process else contextlib.nullcontext(resume_from)
    with claim as resume_from:
        model = _build_model(cfg, world, model_config)
        run = Run(cfg, model, build_optimizer(model, cfg), dataset, tokenizer, out_dir, world, main_process, log,
                  allow_nonfinite=allow_nonfinite)
        start, best_val = _resume(resume_from, run) if resume else (0, math.inf)
        run.telemetry = Telemetry(model, cfg.telemetry if main_process else 0, out_dir / TELEMETRY, start=start)
        if start >= cfg.max_iters:
            log(f"nothing to do: the checkpoint is at iteration {start}, max_iters is {cfg.max_iters}")
        log(f"{model.num_params() / 1e6:.2f}M parameters; {tokenizer.vocab_size} tokens; "
            f"{len(dataset.splits['train']):,} train ids, {len(dataset.splits['val']):,} val ids" +
            (f"; {world.size} ranks" if world.size > 1 else ""))
        began = time.perf_counter()
        try:
            with StopSignals(log) as stop:
                best_val, reached = _loop(run, start, best_val, resume, progress and main_process, stop)
        except Diverged:
            _plot(run)   # the curves up to the blow-up
            raise
        elapsed = time.perf_counter() - began
        _plot(run)
    interrupted = reached < cfg.max_iters
    log((f"interrupted at iteration {reached}, saved in {out_dir / 'last.safetensors'}" if interrupted else "done") +
        f" after {elapsed:.1f} s; best val loss {best_val:.4f}; checkpoints and loss.png in {out_dir}")
    return {"best_val_loss": best_val, "iterations": reached, "seconds": elapsed, "out_dir": str(out_dir),
            "interrupted": interrupted, "signal": stop.agreed}


def _loop(run, start, best_val, resume, progress, stop):
    """Iterations start .. cfg.max_iters, each: the learning rate; every eval_interval, an evaluation and the
    checkpoints; then one step: forward and backward over the micro-batches, the all-reduce, clipping, the update,
    a line of metrics. Returns (best validation loss, the iteration reached). After Ctrl-C or SIGTERM (`stop`, a
    StopSignals) it stops before the next step, the iteration reached (its evaluation done, if due) saved to
    last.safetensors, so that a resumed run carries on exactly as this one would have. Every rank takes the same
    path, each with its rows of every micro-batch; the gradients are averaged before clipping, so clipping and the
    update see the whole batch's gradient."""
    from tqdm import tqdm

    cfg, model, optimizer, world, telemetry = run.cfg, run.model, run.optimizer, run.world, run.telemetry
    micro_steps = cfg.gradient_accumulation_steps
    tokens_per_iter = cfg.batch_size * cfg.block_size * micro_steps
    # A run that blows up overflows in exp, matmul, ...: NumPy's warnings give way to the check of every loss and
    # gradient norm (_check_finite), which names the iteration and stops
    with open(run.out_dir / METRICS if run.main_process else os.devnull, "a") as metrics, \
            tqdm(total=cfg.max_iters, initial=start, disable=not progress, unit="it", dynamic_ncols=True) as bar, \
            np.errstate(all="ignore"):
        for iteration in range(start, cfg.max_iters + 1):
            lr = learning_rate(cfg, iteration)
            set_lr(optimizer, lr)
            evaluation_due = iteration % cfg.eval_interval == 0 or iteration == cfg.max_iters
            if evaluation_due and not (resume and iteration == start):  # a resumed start was evaluated already
                losses = evaluate(run, iteration)
                _check_finite(run, iteration, {"evaluated train loss": losses["train"],
                                               "evaluated val loss": losses["val"]})
                _write(metrics, {"iter": iteration, "train_loss": losses["train"], "val_loss": losses["val"]})
                run.log(f"iter {iteration}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
                improved = losses["val"] < best_val
                best_val = min(best_val, losses["val"])
                _save(run, iteration, best_val, ("last", "best") if improved else ("last",))
            if iteration == cfg.max_iters:
                break
            if stop.agree(world):  # Ctrl-C or SIGTERM on any rank: all stop here, this iteration saved
                if not evaluation_due:  # else last.safetensors holds this iteration already
                    _save(run, iteration, best_val, ("last",))
                return best_val, iteration
            step_began = time.perf_counter()
            optimizer.zero_grad()
            batches = batch_generator(cfg.seed, TRAIN_STREAM, iteration)
            loss_sum = 0.0
            with telemetry.watch(iteration):   # on a telemetry iteration, the activations
                for _ in range(micro_steps):
                    x, y, weight = run.rows(*run.dataset.get_batch("train", cfg.batch_size, cfg.block_size, batches))
                    _, loss = model(x, y)                                                    # x, y: (b, T)
                    (loss * weight / micro_steps).backward()  # gradients add up over micro-batches
                    loss_sum += loss.item() * weight
            world.average_gradients(model.parameters())  # the whole batch's gradient, the same on every rank
            total_norm = float(clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf))  # inf: measured only
            loss = float(world.sum([loss_sum])[0]) / (world.size * micro_steps)
            _check_finite(run, iteration, {"loss": loss, "gradient norm": total_norm})  # before the update
            with telemetry.watch_step(iteration, total_norm, cfg.grad_clip or None):  # the norms around the update
                optimizer.step()
            seconds = time.perf_counter() - step_began
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_iter / seconds:.0f}")
            if iteration % cfg.log_interval == 0:
                _write(metrics, {"iter": iteration, "loss": loss, "lr": lr, "ms_per_iter": 1000 * seconds,
                                 "tokens_per_s": tokens_per_iter / seconds})
    return best_val, cfg.max_iters


def _prepare(cfg, world, log):
    """The run's tokenizer, dataset and model config, with everything else that can be refused checked (a batch too
    small for the ranks, a split shorter than a block, no GPU): all before the out-dir is touched."""
    world.share(cfg.batch_size)  # a batch too small for the ranks
    text = load_text(resolve_dataset(cfg.data or None))
    tokenizer = build_tokenizer(cfg, text, log)
    dataset = TextDataset(text, tokenizer)
    for split in dataset.splits:  # each split holds a block (the dataset's own check, on a throwaway draw)
        dataset.get_batch(split, 1, cfg.block_size, np.random.default_rng(0))
    model_config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                             n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias)
    backend.module_for(cfg.device)  # no GPU: refused now, before the out-dir is made
    return tokenizer, dataset, model_config


def _build_model(cfg, world, model_config):
    """The GPT, with the same initial weights on every device and rank: built on the CPU from the seed, then moved,
    then rank 0's copied to the others. Each rank then draws its own dropout masks."""
    if cfg.device == "cuda":
        world.use_gpu()
    rng.manual_seed(cfg.seed)
    model = GPT(model_config).to(getattr(np, cfg.dtype)).to(cfg.device)
    world.broadcast_parameters(model.parameters())
    if world.rank > 0:
        rng.manual_seed(rank_seed(cfg.seed, world.rank))  # rank 0 goes on with the run's stream, as one process does
    return model


@dataclass
class Run:
    """What the loop works with: the config, the model and its optimizer, the data, where it writes, the ranks."""
    cfg: TrainConfig
    model: GPT
    optimizer: AdamW
    dataset: TextDataset
    tokenizer: object
    out_dir: Path
    world: distributed.World
    main_process: bool              # the rank that logs and writes: train() decides
    log: object
    telemetry: Telemetry = None     # with --telemetry N, on the main process: the network's health every N steps
    allow_nonfinite: bool = False   # carry on through non-finite losses (said once, at nonfinite_from)
    nonfinite_from: int = None
    saved_at: int = None            # the iteration of the last checkpoint

    def rows(self, x, y):
        """This rank's rows of a global batch (B, T), and the weight that makes the ranks' average its mean."""
        lo, hi = self.world.share(len(x))
        return x[lo:hi], y[lo:hi], self.world.size * (hi - lo) / len(x)  # (b, T), (b, T), see distributed.py


@no_grad()
def evaluate(run, iteration):
    """Mean loss over cfg.eval_iters batches of each split (the same batches whenever this iteration is reached),
    each batch shared among the ranks."""
    cfg = run.cfg
    run.model.eval()
    totals = []
    for split in ("train", "val"):
        generator = batch_generator(cfg.seed, EVAL_STREAM, iteration)
        total = 0.0
        for _ in range(cfg.eval_iters):
            x, y, weight = run.rows(*run.dataset.get_batch(split, cfg.batch_size, cfg.block_size, generator))
            total += run.model(x, y)[1].item() * weight
        totals.append(total)
    run.model.train()
    train_total, val_total = run.world.sum(totals) / (run.world.size * cfg.eval_iters)
    return {"train": float(train_total), "val": float(val_total)}


def _save(run, iteration, best_val, names):
    """Checkpoints `names` ("last", "best") of the run at `iteration`: the main process writes them, holding every
    rank's dropout generator state (gathered from all), enough to resume bit for bit."""
    states = run.world.gather(rng.get_state())
    run.saved_at = iteration
    if not run.main_process:
        return
    meta = dict(train_config=run.cfg.to_dict(), tokenizer=run.tokenizer.to_dict(), iter=iteration,
                best_val_loss=best_val, rng=states[0])
    if len(states) > 1:
        meta["rank_rngs"] = states[1:]
    for name in names:
        path = run.out_dir / f"{name}.safetensors"
        if not run.out_dir.is_dir():  # deleted under the run: save_checkpoint would make it anew, the metrics lost
            raise FileNotFoundError(f"cannot save {path}: {run.out_dir} was deleted during the run")
        save_checkpoint(path, run.model, run.optimizer, meta)


def _resume(path, run):
    """Load the checkpoint at `path` into the run's model and optimizer, and this rank's dropout generator state;
    drop the lines of metrics.jsonl past it, and say what resumes (the settings changed: resume_changes). Returns
    (iteration, best val loss). Everything is checked before anything changes, the run's settings against the
    checkpoint's first. A rank the checkpoint has no state for (it was written by fewer ranks, or by an older
    version) starts its dropout stream afresh, from the iteration."""
    checkpoint = load_checkpoint(path)
    _require(checkpoint, "iter", "best_val_loss", "rng", "tokenizer")
    changes = resume_changes(_saved_config(checkpoint, run.cfg.out_dir), run.cfg)
    if checkpoint.meta["tokenizer"] != run.tokenizer.to_dict():
        raise CheckpointError(path, "the checkpoint's tokenizer differs from this dataset's; resume with the data "
                                    "it was trained on")
    restore(checkpoint, run.model, run.optimizer)
    start, best_val = checkpoint.meta["iter"], checkpoint.meta["best_val_loss"]
    states = [checkpoint.meta["rng"], *checkpoint.meta.get("rank_rngs", [])]  # checked by load_checkpoint
    rank = run.world.rank
    if rank < len(states) and rng.is_state(states[rank]):
        rng.set_state(states[rank])
    else:
        if rank < len(states):   # an older version's state (NumPy's PCG64), which this generator cannot continue
            run.log(f"{path}: its dropout generator state was saved by an older version (NumPy's PCG64); the dropout "
                    f"stream starts afresh from the seed and the iteration, so the resumed run does not repeat the "
                    f"original one bit for bit")
        rng.manual_seed((rank_seed(run.cfg.seed, rank) + start) % 2 ** 64)
    run.saved_at = start
    dropped = trim_metrics(run.out_dir, start) if run.main_process else 0
    run.log(f"resuming from {path.name} at iteration {start} (best val loss so far {best_val:.4f})" +
            (f"; dropped {dropped} line(s) of {METRICS} logged after it" if dropped else ""))
    for name, (old, new) in changes.items():
        run.log(f"{name} is {new!r} from here on (the run's was {old!r})")
    return start, best_val


def run_config(out_dir):
    """The settings of the run in `out_dir`, as the checkpoint that `resume` takes holds them."""
    return _saved_config(load_checkpoint(check_out_dir(out_dir, resume=True, overwrite=False)), out_dir)


def _saved_config(checkpoint, out_dir):
    """The TrainConfig a training checkpoint was saved with; its out_dir is `out_dir`, where the run is now (it
    may have been moved)."""
    _require(checkpoint, "train_config")
    saved = checkpoint.meta["train_config"]
    unknown = sorted(set(saved) - set(FIELDS))
    if unknown:
        raise CheckpointError(checkpoint.path, f"train_config holds settings this version does not know: {unknown}")
    try:
        return TrainConfig(**{**saved, "out_dir": str(out_dir)})
    except (ConfigError, TypeError) as err:
        raise CheckpointError(checkpoint.path, f"train_config: {err}") from None


class Diverged(RuntimeError):
    """The run blew up: a loss or the gradient norm is NaN or infinite. Raised before the update that would spread
    it to the weights and before anything is saved, so the last checkpoint stays as it was; `iteration` is where."""

    def __init__(self, message, iteration):
        super().__init__(message)
        self.iteration = iteration


def _check_finite(run, iteration, values):
    """Raise Diverged if any of `values` ({what: value}) is NaN or infinite, naming the iteration and the likely
    cause; unless the run allows it, then say so once and go on. The values are all-reduced, the same on every
    rank, so every rank stops at the same iteration."""
    bad = ", ".join(f"the {what} is {value}" for what, value in values.items() if not math.isfinite(value))
    if not bad:
        return
    if run.allow_nonfinite:
        if run.nonfinite_from is None:
            run.nonfinite_from = iteration
            run.log(f"iteration {iteration}: {bad}; carrying on (allow_nonfinite): the weights and checkpoints "
                    f"may hold NaN from here")
        return
    cfg = run.cfg
    cause = (f"the learning rate is likely too high ({learning_rate(cfg, iteration):.3g} at this step, peak "
             f"{cfg.learning_rate:g})" + ("" if cfg.grad_clip else " with gradient clipping off"))
    kept = (f"The checkpoints in {run.out_dir} are kept as they were (the latest at iteration {run.saved_at}): "
            f"resume from it with a lower learning rate" if run.saved_at is not None else "No checkpoint was saved")
    raise Diverged(f"the run diverged at iteration {iteration}: {bad}; {cause}. {kept}", iteration)


def _silent(line):
    pass


def rank_seed(seed, rank):
    """The seed of rank `rank`'s dropout generator (rank 0's is the run's seed, as in a single process)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0])


class StopSignals:
    """Within the `with` block, Ctrl-C (SIGINT) or SIGTERM (`kill`, a job scheduler's stop, mpiexec passing either
    on to its ranks) sets `received` to the signal's number instead of ending the process, so that the loop can
    stop between two steps, where everything it holds is consistent, and save. A second such signal acts at once:
    Ctrl-C raises KeyboardInterrupt, SIGTERM ends the process. A signal that is ignored (nohup) or handled by the
    caller already, or a block that is not on the main thread, is left as it was."""

    DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self, log):
        self.log, self.received, self.agreed, self.previous = log, None, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number, default in self.DEFAULTS.items():
                if signal.getsignal(number) is default:
                    self.previous[number] = signal.signal(number, self._receive)
        return self

    def _receive(self, number, frame):
        self.received = self.received or number
        signal.signal(number, self.previous[number])
        self.log(f"{self.NAMES[number]}: stopping after this step, to save it (send it again to stop at once; the "
                 f"last checkpoint is kept)")

    def agree(self, world):
        """The signal to stop for, the same on every rank (one all-reduce on N ranks), so that all stop at the
        same iteration: SIGTERM if any rank got it, else Ctrl-C if any rank got that, else None; kept as `agreed`.
        `received` is read once and never written here: a signal that lands during the all-reduce (where a rank
        waits most) is counted at the next agreement instead of being overwritten."""
        mine = self.received
        if world.size > 1:
            interrupts, terminations = world.sum([mine == signal.SIGINT, mine == signal.SIGTERM])
            mine = signal.SIGTERM if terminations else signal.SIGINT if interrupts else None
        self.agreed = mine
        return mine

    def __exit__(self, *exception):
        for number, previous in self.previous.items():
            signal.signal(number, previous)


def _require(checkpoint, *keys):
    for key in keys:
        if key not in checkpoint.meta:
            raise CheckpointError(checkpoint.path, f"no {key!r} in its metadata: not a checkpoint of a training run")


def _write(file, record):
    try:
        file.write(json.dumps(record) + "\n")
        file.flush()  # a crash loses no logged line
    except OSError as err:  # a full disk. The file object's error does not name the file; and its close would
        with contextlib.suppress(OSError):  # try the unwritten bytes again, raising over this error: closed here
            file.close()
        raise OSError(err.errno, f"cannot write {file.name}: {err.strerror}") from err


def _plot(run):
    if run.main_process:
        plot_losses(run.out_dir / METRICS, run.out_dir / "loss.png")
        plot_telemetry(run.out_dir / TELEMETRY, run.out_dir, run.cfg.grad_clip or None)  # nothing without --telemetry


def plot_losses(metrics_path, png_path):
    """The loss curve of a run: training loss per logged step, train and val loss at each evaluation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_path) as f:
        records = [json.loads(line) for line in f]
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.6, label="train (batch)")
    ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (eval)")
    ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val (eval)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)

