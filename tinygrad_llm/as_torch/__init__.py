"""`tinygrad-llm run SCRIPT.py`: a PyTorch script run unchanged, with `torch` and its submodules resolving to the
engine, for that process only.

    modules.py     torch's modules as the engine provides them, and the error for a name it lacks
    stand_ins.py   what a script touches that the engine has no use for: torch.cuda, torch.backends, torch.compile,
                   autocast and GradScaler (accepted only switched off), half precision (refused)
    run.py         the script run as `python SCRIPT.py` would run it; its error for a missing API in one line,
                   naming the API and the script's line; --profile, --graph, --detect-anomaly
"""
