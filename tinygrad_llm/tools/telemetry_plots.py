"""The three plots of a telemetry.jsonl (telemetry.py), as PNGs:

    update_ratios.png    log10(|Δw| / |w|) of every weight matrix over the iterations, with the 1e-3 guide line
    activations.png      the histogram of each block's output at the first and the last record (as densities)
    grad_norm.png        the global gradient norm over the iterations, the clipping threshold, each clip marked
"""
from pathlib import Path

import numpy as np

from .telemetry import read


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")   # files only: no window, no display needed
    import matplotlib.pyplot as plt
    return plt


PNGS = ("update_ratios.png", "activations.png", "grad_norm.png")


def plot_telemetry(path, out_dir, max_norm=None):
    """Write the three PNGs of the telemetry at `path` into out_dir; returns their paths ([] without a record)."""
    records = read(path) if Path(path).exists() else []
    if not records:
        return []
    ratios_png, activations_png, grad_norm_png = (f"{out_dir}/{name}" for name in PNGS)
    return [update_ratios(records, ratios_png), activations(records, activations_png),
            grad_norm(records, grad_norm_png, max_norm)]


def update_ratios(records, png):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    iters = [r["iter"] for r in records]
    # weight matrices only (linear layers, embeddings): the gains and biases have other scales
    names = [name for name, p in records[0]["params"].items() if len(p["shape"]) == 2]
    colors = plt.cm.viridis(np.linspace(0, 0.95, len(names)))
    for name, color in zip(names, colors):
        ratios = [r["params"][name]["update_log10"] for r in records]
        ax.plot(iters, [np.nan if v is None else v for v in ratios], lw=1, color=color, label=name)
    ax.axhline(-3, color="black", ls="--", lw=1, label="1e-3 (rule of thumb)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("log10(|update| / |weight|)")
    ax.set_title("How much each step changes each weight matrix")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="upper right")
    return _save(fig, png)


def activations(records, png):
    plt = _pyplot()
    with_blocks = [r for r in records if r["blocks"]]
    if not with_blocks:
        raise ValueError("plot_telemetry: no record holds block activations")
    shown = [with_blocks[0], with_blocks[-1]] if len(with_blocks) > 1 else with_blocks
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 4), squeeze=False)
    for ax, record in zip(axes[0], shown):
        for name, block in record["blocks"].items():
            histogram = block["histogram"]
            counts = np.asarray(histogram["counts"], dtype=float)
            edges = np.linspace(histogram["from"], histogram["to"], len(counts) + 1)
            density = counts / (counts.sum() * (edges[1] - edges[0]))   # area 1, whatever the bins' width
            ax.plot((edges[:-1] + edges[1:]) / 2, density,
                    label=f"{name}: mean {block['mean']:+.2f}, std {block['std']:.2f}")
        ax.set_title(f"block outputs at iteration {record['iter']}")
        ax.set_xlabel("activation (beyond mean ± 4 std: in the end bins)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    return _save(fig, png)


def grad_norm(records, png, max_norm=None):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    iters = [r["iter"] for r in records]
    norms = [np.nan if r["grad_norm"] is None else r["grad_norm"] for r in records]
    ax.plot(iters, norms, lw=1, label="global gradient norm (before clipping)")
    clipped = [(r["iter"], r["grad_norm"]) for r in records if r["clipped"]]
    if clipped:
        ax.scatter(*zip(*clipped), s=12, color="red", zorder=3, label=f"clipped ({len(clipped)} of {len(records)})")
    if max_norm:
        ax.axhline(max_norm, color="black", ls="--", lw=1, label=f"clip threshold {max_norm:g}")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("gradient norm")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, png)


def _save(fig, png):
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    _pyplot().close(fig)
    return png
