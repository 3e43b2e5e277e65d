"""benchmarks/scale_cpu.py's count of a training step's matmul FLOPs, against PyTorch's own FLOP counter on the
same model (benchmarks/torch_gpt.py), forward and backward."""
import pathlib
import sys

import numpy as np
import pytest

from tinygrad_llm.models.gpt import GPT, GPTConfig


@pytest.mark.parametrize("n_layer, n_embd, n_head, block_size, batch_size, vocab_size",
                         [(2, 16, 2, 8, 3, 11), (1, 24, 3, 5, 2, 7)])
def test_step_flops_equal_pytorchs_count(torch, n_layer, n_embd, n_head, block_size, batch_size, vocab_size):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    from scale_cpu import Size, step_flops, weight_product_flops
    from torch_gpt import torch_gpt_like
    size = Size("test", n_layer, n_embd, n_head, block_size, batch_size, vocab_size, steps=1, warmup=0)
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                          n_embd=n_embd, dropout=0.0, bias=False))
    reference = torch_gpt_like(model)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, vocab_size, (batch_size, block_size)))
    # the math backend: attention as bmm products, which the counter sees (it does not count the fused CPU kernel)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = reference(x, x)
        loss.backward()
    assert counter.get_total_flops() == step_flops(size)
    # the products with the weights are the mm's (linear layers, lm head); attention's are the bmm's
    assert counter.get_flop_counts()["Global"][torch.ops.aten.mm] == weight_product_flops(size)
