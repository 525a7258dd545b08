"""Training signal for the lightning indexer (the CSA layers' top-k selector).

The indexer's output is a set of indices, so the language-model loss gives it no gradient.
DeepSeek trains it by distillation from the main attention (the DeepSeek-V3.2 report's dense
warm-up, which V4 inherits for CSA): for each query t, the target is the main attention's
probability mass on each compressed entry s, summed over heads and renormalised over the
compressed entries,

    p[t, s] = Σ_h P_h[t, s] / Σ_s' Σ_h P_h[t, s'],

where P_h is head h's *dense* attention distribution over its window keys, every causally
visible compressed entry and the sink (dense: not restricted to the indexer's current top-k).
The indexer is trained to match it,

    L_I = mean_t KL(p[t, :] || softmax_s I[t, s]),

with I the indexer's scores over the same visible entries. The target is computed without
gradient and the indexer's inputs are detached, so L_I moves only the indexer's own weights
(its compressor, `q_b_proj`, `weights_proj`) and never the rest of the model.

Hooks only: transformers' modules are used unchanged. `IndexerDistillation(model)` installs the
hooks; after each forward, `.loss()` returns L_I summed over the CSA layers (None when no query
saw a compressed entry) and `.last` the per-layer values for the log.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.deepseek_v4.modeling_deepseek_v4 import apply_rotary_pos_emb

CSA = "compressed_sparse_attention"


class IndexerDistillation:
    """Forward hooks that collect, per CSA layer, the indexer's scores (with gradient) and the
    dense main-attention target (without); `loss()` turns them into the KL above."""

    def __init__(self, model):
        self.ratio = model.config.compress_rates[CSA]
        self.layers = [i for i, t in enumerate(model.config.layer_types) if t == CSA]
        self.boxes = {}
        self.last = {}
        for li in self.layers:
            attn = model.model.layers[li].self_attn
            box = self.boxes.setdefault(li, {})
            attn.compressor.indexer.register_forward_pre_hook(_detach_inputs)
            attn.compressor.indexer.scorer.register_forward_hook(_keep("scores", box))
            attn.compressor.register_forward_hook(_keep("compressed", box, lambda out: out[0].detach()))
            attn.register_forward_hook(self._target_hook(attn, box), with_kwargs=True)

    def _target_hook(self, attn, box):
        ratio = self.ratio

        def hook(mod, args, kwargs, out):
            if not mod.training:
                return None
            hs = args[0] if args else kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"][attn.rope_layer_type]
            pos = kwargs["position_ids"]
            mask = kwargs.get("attention_mask")
            with torch.no_grad():
                b, s, _ = hs.shape
                q = attn.q_b_proj(attn.q_a_norm(attn.q_a_proj(hs))).view(b, s, -1, attn.head_dim).transpose(1, 2)
                q = apply_rotary_pos_emb(attn.q_b_norm(q), cos, sin)  # [B, H, S, D]
                kv = attn.kv_norm(attn.kv_proj(hs)).view(b, s, 1, attn.head_dim).transpose(1, 2)
                kv = apply_rotary_pos_emb(kv, cos, sin)  # [B, 1, S, D]
                ckv = box["compressed"]  # [B, 1, T, D]
                t = ckv.shape[2]
                win = torch.matmul(q, kv.transpose(2, 3)) * attn.scaling
                if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
                    win = win.masked_fill(~mask[..., :s], float("-inf"))
                elif isinstance(mask, torch.Tensor):
                    win = win + mask[..., :s]
                else:
                    i = torch.arange(s, device=hs.device)
                    vis = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < attn.sliding_window)
                    win = win.masked_fill(~vis, float("-inf"))
                comp = torch.matmul(q, ckv.transpose(2, 3)) * attn.scaling
                visible = _visible(pos, t, ratio).expand(b, -1, -1)  # [B, S, T]
                comp = comp.masked_fill(~visible[:, None], float("-inf"))
                sink = mod.sinks.reshape(1, -1, 1, 1).expand(b, -1, s, 1)
                probs = torch.cat([win, comp, sink], dim=-1).softmax(dim=-1)[..., s:s + t]
                mass = probs.sum(dim=1)  # [B, S, T]
                box["target"] = mass / mass.sum(dim=-1, keepdim=True).clamp_min(1e-30)
                box["visible"] = visible
            return None

        return hook

    def loss(self):
        total = None
        self.last = {}
        for li in self.layers:
            box = self.boxes[li]
            if "target" not in box:
                continue
            scores, target, visible = box.pop("scores"), box.pop("target"), box.pop("visible")
            rows = visible.any(dim=-1)  # queries with at least one visible entry
            if not bool(rows.any()):
                continue
            logq = scores.float().masked_fill(~visible, float("-inf")).log_softmax(dim=-1)
            p = target[rows]
            lq = logq[rows]
            kl = torch.where(p > 0, p * (p.clamp_min(1e-30).log() - lq), torch.zeros_like(p)).sum(-1).mean()
            self.last[li] = round(kl.item(), 4)
            total = kl if total is None else total + kl
        return total


def _visible(pos, t, ratio):
    """Compressed entry s covers tokens [s·ratio, (s+1)·ratio): query at position p sees it once
    complete, s < (p+1) // ratio (the same rule as transformers' indexer and the Go runtime)."""
    thr = (pos + 1) // ratio  # [B, S]
    return torch.arange(t, device=pos.device)[None, None, :] < thr[..., None]


def _detach_inputs(mod, args):
    return (args[0].detach(), args[1].detach()) + tuple(args[2:])


def _keep(name, box, pick=lambda out: out):
    """A forward hook that stores pick(output) as box[name] while training."""
    def hook(mod, inp, out):
        if mod.training:
            box[name] = pick(out)
        return None

    return hook


def self_check(seed: int = 0) -> None:
    """Checks the hooks against transformers itself on a small random model (run this file):
    1. with at most index_topk compressed entries the indexer selects every visible one, so the
       real (sparse) attention equals the dense one and the target must equal transformers' own
       attention probabilities on the compressed entries, summed over heads and renormalised;
    2. L_I's gradient reaches the indexer's weights and nothing else;
    3. a few optimiser steps on the indexer alone lower L_I."""
    import common

    torch.manual_seed(seed)
    cfg = common.model_config_dict(hidden=64, layers=3, vocab=512, index_topk=16)
    _, model = common.build_model(cfg)
    common.init_tid2eid(model, cfg["vocab_size"], cfg["n_routed_experts"], cfg["num_experts_per_tok"], seed)
    model.train()
    with torch.no_grad():  # sinks start at zero; make them matter
        for layer in model.model.layers:
            layer.self_attn.sinks.normal_(0.0, 2.0)
    distill = IndexerDistillation(model)
    seen = {}
    for li in distill.layers:
        model.model.layers[li].self_attn.register_forward_hook(
            lambda mod, inp, out, li=li: seen.__setitem__(li, out[1].detach()))
    seq = 16 * distill.ratio  # 16 compressed entries = index_topk: all selected
    x = torch.randint(3, cfg["vocab_size"], (2, seq))
    model(input_ids=x, use_cache=False)
    for li in distill.layers:
        box = distill.boxes[li]
        t = box["compressed"].shape[2]
        mass = seen[li][..., seq:seq + t].sum(dim=1)
        want = mass / mass.sum(-1, keepdim=True).clamp_min(1e-30)
        rows = box["visible"].any(-1)
        err = (box["target"][rows] - want[rows]).abs().max().item()
        assert err < 1e-5, f"layer {li}: target differs from transformers' attention by {err}"
    kl = distill.loss()
    assert kl is not None and kl.item() > 0, kl
    model.zero_grad(set_to_none=True)
    kl.backward()
    for name, p in model.named_parameters():
        is_indexer = ".compressor.indexer." in name
        got = p.grad is not None and bool(p.grad.abs().sum() > 0)
        if is_indexer and name.split(".")[-2] in ("kv_proj", "gate_proj", "q_b_proj", "weights_proj"):
            assert got, f"{name}: no gradient from the indexer loss"
        if not is_indexer:
            assert not got, f"{name}: gradient from the indexer loss leaks outside the indexer"
    params = [p for n, p in model.named_parameters() if ".compressor.indexer." in n]
    opt = torch.optim.Adam(params, lr=1e-2)
    first = None
    for _ in range(30):
        model(input_ids=x, use_cache=False)
        kl = distill.loss()
        first = kl.item() if first is None else first
        opt.zero_grad(set_to_none=True)
        kl.backward()
        opt.step()
    model(input_ids=x, use_cache=False)
    last = distill.loss().item()
    assert last < 0.5 * first, f"indexer loss {first:.4f} -> {last:.4f} after 30 steps"
    print(f"indexer_loss self-check passed: target = transformers' attention (max error {err:.1e}); "
          f"gradient only in the indexer; KL {first:.4f} -> {last:.4f} in 30 steps")


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    torch.set_num_threads(1)
    self_check()
