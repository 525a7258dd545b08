"""Quantisation-aware training: the forward pass sees the weights exactly as export.py stores them.

The released layout keeps the routed experts in FP4 (e2m1, a power-of-two scale per 32 inputs),
the attention and shared-expert projections in FP8 (e4m3, a power-of-two scale per 128x128 block)
and most of the rest in BF16. Trained in float32 and rounded only at export, the model loses
≈ 0.007 bits/byte on the held-out text (docs/MODEL.md, "Quantisation"), almost all of it from
the FP4 experts (12% relative L2 error per tensor). DeepSeek trains V4's experts quantisation-
aware; so can we, with the straight-through estimator:

  * `QuantAware(model).quantise()` before the forward pass replaces every FP4/FP8/BF16 parameter
    by its fake-quantised value (quantise, then dequantise, bit for bit what `export.py` followed
    by `load_dequantized` gives) and keeps the float32 master copies;
  * the backward pass computes the gradient at the quantised point;
  * `restore()` puts the master weights back before the optimizer step, which therefore updates
    the master weights with that gradient (d fake_quant(w) / dw taken as the identity).

F32 tensors (mHC, sinks, position biases, router bias) are stored exactly and left alone. The
export of a model trained this way is the trained model: the "quantisation effect" measured by
evaluate.py then compares the master weights with what was actually trained.

`python tools/train/quant_aware.py` checks the fake quantisation against export.py +
load_dequantized on a small random model (every tensor bit-identical) and the master-weight
round trip.
"""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export as ex  # noqa: E402

_EXPERT_PARAMS = ("mlp.experts.gate_up_proj", "mlp.experts.down_proj")  # [E, rows, cols], native rows


def hf_weight_format(hf_name: str) -> str:
    """How export.py stores the transformers parameter hf_name ("FP4", "FP8", "BF16", "F32", "I64")."""
    if hf_name.endswith(_EXPERT_PARAMS):
        return "FP4"  # fused experts split along rows only; the per-32 groups run along the last dim
    (native,) = ex.hf_to_native({hf_name: torch.zeros(1)}).keys()
    return ex.weight_format(native)


def _pow2_exponent(amax: torch.Tensor, qmax: float) -> torch.Tensor:
    """Smallest integer e with amax / 2^e <= qmax (0 for amax 0), as export.pow2_scale_exponent:
    the ratio is formed in float32, as numpy does there."""
    r = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    m, k = torch.frexp(r)
    return torch.where(m == 0.5, k - 1, k)


def fake_fp4(w: torch.Tensor, group: int = 32) -> torch.Tensor:
    """Round w to e2m1 with a power-of-two scale per `group` consecutive elements of the last dim
    (nearest, ties to the even code), and back to float32."""
    g = w.reshape(-1, group)
    amax = g.abs().amax(dim=1)
    scale = torch.ldexp(torch.ones_like(amax), _pow2_exponent(amax, 6.0)).unsqueeze(1)
    x = g / scale
    a = x.abs()
    # e2m1 magnitudes 0 .5 1 1.5 | 2 3 4 | 6: steps of 0.5, 1 and 2; torch.round is half-to-even and
    # the even code is the even multiple of the step in each range (checked against export.py).
    q = torch.where(a <= 2, torch.round(a * 2) / 2,
                    torch.where(a <= 4, 2 + torch.round(a - 2), 4 + 2 * torch.round((a - 4) / 2)))
    return (torch.sign(x) * q * scale).reshape(w.shape)


def fake_fp8(w: torch.Tensor, block: int = 128) -> torch.Tensor:
    """Round the 2-D w to e4m3 with a power-of-two scale per block x block tile, and back."""
    rows, cols = w.shape
    br, bc = -(-rows // block), -(-cols // block)
    pad = torch.zeros(br * block, bc * block, dtype=torch.float32, device=w.device)
    pad[:rows, :cols] = w
    amax = pad.abs().reshape(br, block, bc, block).amax(dim=(1, 3))
    scale = torch.ldexp(torch.ones_like(amax), _pow2_exponent(amax, 448.0))
    full = scale.repeat_interleave(block, 0).repeat_interleave(block, 1)[:rows, :cols]
    return (w / full).to(torch.float8_e4m3fn).to(torch.float32) * full


def fake_bf16(w: torch.Tensor) -> torch.Tensor:
    return w.to(torch.bfloat16).to(torch.float32)


_FAKE = {"FP4": fake_fp4, "FP8": fake_fp8, "BF16": fake_bf16}


class QuantAware:
    """Straight-through fake quantisation of a transformers DeepseekV4 model's stored-quantised
    parameters; see the module comment for the protocol (quantise, forward, backward, restore)."""

    def __init__(self, model, block: int = 128):
        self.block = block
        self.params = [(p, kind) for n, p in model.named_parameters()
                       if (kind := hf_weight_format(n)) in _FAKE]
        self.master = None

    def quantise(self) -> None:
        with torch.no_grad():
            self.master = [p.detach().clone() for p, _ in self.params]
            for p, kind in self.params:
                p.copy_(fake_fp8(p, self.block) if kind == "FP8" else _FAKE[kind](p))

    def restore(self) -> None:
        with torch.no_grad():
            for (p, _), m in zip(self.params, self.master):
                p.copy_(m)
        self.master = None


def self_check(seed: int = 0) -> None:
    """1. fake quantisation == export.py + load_dequantized, bit for bit, on every parameter of a
    small random model (with weights scaled so that some FP8/FP4 groups are zero, tiny or large);
    2. it changes the FP4 tensors, and rounds a group of exact ties to the even codes;
    3. restore() gives back the masters."""
    import tempfile

    import common

    torch.manual_seed(seed)
    cfg = common.model_config_dict(hidden=64, layers=3, vocab=512, index_topk=16)
    _, model = common.build_model(cfg)
    common.init_tid2eid(model, cfg["vocab_size"], cfg["n_routed_experts"], cfg["num_experts_per_tok"], seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.ndim >= 2:
                p.mul_(torch.exp2(torch.randint(-20, 6, (1,)).float()))  # span many scale exponents
                p.view(-1)[: min(64, p.numel())] = 0  # an all-zero group
        # one FP4 group of exact ties between e2m1 neighbours (scale 1: absmax 6), both signs
        ties = torch.tensor([6, .25, .75, 1.25, 1.75, 2.5, 3.5, 5, -.25, -.75, -1.25, -1.75, -2.5, -3.5, -5, 0] * 2)
        model.model.layers[0].mlp.experts.gate_up_proj.view(-1)[64:96] = ties
    qa = QuantAware(model, cfg["quantization_config"]["weight_block_size"][0])
    kinds = {}
    for p, k in qa.params:
        kinds[k] = kinds.get(k, 0) + 1
    assert set(kinds) == {"FP4", "FP8", "BF16"}, kinds
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with tempfile.TemporaryDirectory() as d:
        ex.export(model.state_dict(), common.clean_config(cfg), d)
        _, deq, _ = ex.load_dequantized(d)
    want = dict(deq.named_parameters())
    qa.quantise()
    changed = 0
    for n, p in model.named_parameters():
        if not torch.equal(p, want[n]):
            diff = (p - want[n]).abs().max().item()
            raise AssertionError(f"{n} ({hf_weight_format(n)}): fake quantisation differs from the export by {diff}")
        if hf_weight_format(n) == "FP4" and not torch.equal(p, before[n]):
            changed += 1
    assert changed == len([1 for _, k in qa.params if k == "FP4"]), "FP4 fake quantisation changed nothing"
    got = model.model.layers[0].mlp.experts.gate_up_proj.view(-1)[64:80].tolist()
    assert got == [6, 0, 1, 1, 2, 2, 4, 4, 0, -1, -1, -2, -2, -4, -4, 0], f"e2m1 ties: {got}"
    qa.restore()
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"{n}: master weights not restored"
    print(f"quant_aware self-check passed: {kinds} parameters bit-identical to export + dequantise")


if __name__ == "__main__":
    torch.set_num_threads(1)
    self_check()
