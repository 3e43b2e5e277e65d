"""Every CUDA source in kernels/ compiles with nvcc for sm_80 (A100) and sm_90 (H100), with no GPU needed; for
kernels/attention.cu, at every supported head dim and with the launcher's own options, and ptxas reports no
register spills for any of its kernels. Skips where nvcc is not on PATH (the CPU-only CI)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tinygrad_llm.engine.cuda import attention

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
ARCHS = ("sm_80", "sm_90")
NVCC = shutil.which("nvcc")
ATTENTION_KERNELS = {"attention_forward_f32", "attention_backward_preprocess_f32", "attention_backward_f32",
                     "attention_forward_bf16", "attention_backward_preprocess_bf16", "attention_backward_bf16"}

# ptxas -v, per kernel:  "Function properties for NAME\n  N bytes stack frame, N bytes spill stores, N bytes spill loads"
PROPERTIES = re.compile(r"Function properties for (\w+)\s*\n\s*\d+ bytes stack frame, (\d+) bytes spill stores, "
                        r"(\d+) bytes spill loads")


def cases():
    for path in sorted(KERNELS.glob("*.cu")):
        for arch in ARCHS:
            if path.name == attention.FILE:
                for d in attention.HEAD_DIMS:
                    yield pytest.param(path, arch, attention.compile_options(d), id=f"{path.name}-{arch}-D{d}")
            else:
                yield pytest.param(path, arch, (), id=f"{path.name}-{arch}")


def compile_cubin(path, arch, options, out_dir):
    """nvcc -cubin with ptxas -v, as NVRTC would compile it at run time (-std=c++17, device code only)."""
    cmd = [NVCC, "-std=c++17", f"-arch={arch}", "-cubin", "-Xptxas", "-v", *options,
           "-o", str(out_dir / f"{path.stem}.cubin"), str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr, " ".join(cmd)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH: CUDA sources cannot be compiled here")
@pytest.mark.parametrize("path, arch, options", list(cases()))
def test_kernel_compiles(path, arch, options, tmp_path):
    returncode, log, cmd = compile_cubin(path, arch, options, tmp_path)
    assert returncode == 0, f"{path.name} does not compile for {arch}:\n$ {cmd}\n{log}"
    if path.name != attention.FILE:
        return
    spills = {name: (int(stores), int(loads)) for name, stores, loads in PROPERTIES.findall(log)}
    assert set(spills) == ATTENTION_KERNELS, f"ptxas reported {sorted(spills)}, expected {sorted(ATTENTION_KERNELS)}:\n{log}"
    spilling = {name: s for name, s in spills.items() if s != (0, 0)}
    assert not spilling, f"{path.name} {arch} {options}: register spills (bytes stored, loaded) {spilling}:\n{log}"


def test_every_kernel_file_is_covered():
    """The glob above finds the attention kernels (a typo in the path would skip everything silently)."""
    assert (KERNELS / attention.FILE).is_file()
