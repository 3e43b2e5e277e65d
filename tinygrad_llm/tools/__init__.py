"""Tools for looking inside: they watch the engine work and report what it did. They read the engine's graph and
its hooks (engine/tensor.py's `run_forward` and `run_backward`, which observer.py swaps for timed versions while a
tool is on; nn/module.py's `module_stack`); the engine does not know them.

    observer.py        what every tool shares: switching itself on and off, naming the module that made an op
    viz.py             the graph drawn (graphviz) or printed as a tree, with shapes, module paths, gradient norms
    profiler.py        every op's forward and backward timed and sized; a table, a Chrome trace
    anomaly.py         the first op that made a NaN or an infinity, and the line of code that called it
    telemetry.py       a network's health while it trains: gradient, weight and update norms, activations
    telemetry_plots.py the plots of telemetry.jsonl
"""
