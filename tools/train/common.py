"""Shared pieces: the model config (HF spelling, as written to config.json) and model building."""
from __future__ import annotations

import dataclasses
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(os.path.dirname(HERE), "reference")
if REFERENCE not in sys.path:
    sys.path.insert(0, REFERENCE)


def model_config_dict(hidden=160, layers=6, heads=4, head_dim=128, vocab=8192, moe_width=96, experts=8,
                      topk=2, hash_layers=2, window=64, index_topk=16, q_lora=64, o_lora=64, o_groups=2,
                      compress_ratios=None, max_seq=512):
    """The config.json content (HF spelling; floats as floats; qk_rope_head_dim present)."""
    if compress_ratios is None:
        base = [0, 0, 4, 128, 4, 128, 4, 128]
        compress_ratios = base[:layers] + [0]  # trailing entry = MTP slot, dropped by HF (truncation)
    return {
        "architectures": ["DeepseekV4ForCausalLM"],
        "model_type": "deepseek_v4",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "compress_ratios": compress_ratios,
        "num_attention_heads": heads,
        "num_key_value_heads": 1,
        "head_dim": head_dim,
        "qk_rope_head_dim": 64,
        "q_lora_rank": q_lora,
        "o_groups": o_groups,
        "o_lora_rank": o_lora,
        "sliding_window": window,
        "index_n_heads": 4,
        "index_head_dim": 128,
        "index_topk": index_topk,
        "hc_mult": 4,
        "hc_sinkhorn_iters": 20,
        "hc_eps": 1e-6,
        "rms_norm_eps": 1e-6,
        "moe_intermediate_size": moe_width,
        "n_routed_experts": experts,
        "num_experts_per_tok": topk,
        "n_shared_experts": 1,
        "num_hash_layers": hash_layers,
        "scoring_func": "sqrtsoftplus",
        "norm_topk_prob": True,
        "routed_scaling_factor": 1.5,
        "swiglu_limit": 10.0,
        "rope_theta": 10000.0,
        "compress_rope_theta": 160000.0,
        "rope_scaling": {"type": "yarn", "factor": 16.0, "original_max_position_embeddings": 65536,
                         "beta_fast": 32, "beta_slow": 1},
        "max_position_embeddings": 1048576,
        "tie_word_embeddings": False,
        "num_nextn_predict_layers": 1,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 2,
        "initializer_range": 0.02,
        "hidden_act": "silu",
        "torch_dtype": "bfloat16",
        "expert_dtype": "fp4",
        "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                "scale_fmt": "ue8m0", "weight_block_size": [128, 128]},
    }


def clean_config(cfg: dict) -> dict:
    """config.json as released: rope_scaling in the flat V4 spelling (drop keys transformers injects)."""
    import copy

    cfg = copy.deepcopy(cfg)
    rs = cfg.get("rope_scaling")
    if isinstance(rs, dict):
        rs.pop("rope_theta", None)
        if "type" in rs:
            rs.pop("rope_type", None)
    return cfg


_NON_MODEL_KEYS = {"architectures", "model_type", "torch_dtype", "quantization_config", "expert_dtype",
                   "transformers_version", "dtype"}


def build_hf_config(cfg: dict):
    from transformers import DeepseekV4Config

    import copy

    # deep copy: transformers edits the rope_scaling dict it is given (adds rope_theta/rope_type)
    kwargs = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in _NON_MODEL_KEYS}
    for fld in dataclasses.fields(DeepseekV4Config):
        v = kwargs.get(fld.name)
        if "float" in str(fld.type) and isinstance(v, int) and not isinstance(v, bool):
            raise ValueError(f"config field {fld.name} must be a JSON float, got {v!r}")
    return DeepseekV4Config(**kwargs, attn_implementation="eager", experts_implementation="eager")


def build_model(cfg: dict):
    import torch
    from transformers import DeepseekV4ForCausalLM

    config = build_hf_config(cfg)
    model = DeepseekV4ForCausalLM(config).to(torch.float32)
    return config, model


def init_tid2eid(model, vocab: int, experts: int, topk: int, seed: int):
    """Fixed hash routing: for every token id, `topk` distinct experts drawn at random (seeded)."""
    import numpy as np
    import torch

    for li, layer in enumerate(model.model.layers):
        gate = layer.mlp.gate
        if hasattr(gate, "tid2eid"):
            rng = np.random.default_rng([seed, li])
            tab = np.stack([rng.permutation(experts)[:topk] for _ in range(vocab)]).astype(np.int64)
            with torch.no_grad():
                gate.tid2eid.copy_(torch.from_numpy(tab))


def install_tie_rule(model):
    """Make the CSA indexer break exact score ties like the Go runtime and the committed fixtures:
    higher score first, equal scores by lower entry index (docs/reference-differences.md §0.5).
    Returns a dict counting queries whose picks this changed relative to torch.topk."""
    import torch

    stats = {"changed_queries": 0}
    m = model.config.compress_rates["compressed_sparse_attention"]
    for li, t in enumerate(model.config.layer_types):
        if t != "compressed_sparse_attention":
            continue
        idx = model.model.layers[li].self_attn.compressor.indexer
        box = {}

        def score_hook(mod, inp, out, box=box):
            box["scores"] = out.detach()

        def pick_hook(mod, inp, out, box=box):
            if out.shape[-1] == 0:
                return None
            scores = box["scores"]  # [B, S, C]
            pos = inp[2] if len(inp) > 2 else None
            if pos is None:
                raise RuntimeError("indexer hook: position_ids not passed positionally")
            thr = (pos + 1) // m  # [B, S]
            entry = torch.arange(scores.shape[-1], device=scores.device)
            masked = scores.masked_fill(entry[None, None, :] >= thr[..., None], float("-inf"))
            order = torch.sort(masked, dim=-1, descending=True, stable=True).indices[..., : out.shape[-1]]
            order = torch.where(order >= thr[..., None], torch.full_like(order, -1), order)
            a = torch.sort(order, dim=-1).values
            b = torch.sort(out.to(order.dtype), dim=-1).values
            stats["changed_queries"] += int((a != b).any(dim=-1).sum())
            return order.to(out.dtype)

        idx.scorer.register_forward_hook(score_hook)
        idx.register_forward_hook(pick_hook)
    return stats
