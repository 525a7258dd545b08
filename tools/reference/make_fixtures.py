#!/usr/bin/env python3
"""Generate float32 reference logits for a tiny DeepSeek-V4 checkpoint with transformers.

    python tools/reference/make_fixtures.py --model DIR --out DIR [--lengths 300,333,385] [--seed 1234]

DIR (model) holds config.json (HF spelling, DeepSeek-V4 keys such as compress_ratios,
qk_rope_head_dim, rope_scaling) and safetensors in the native DeepSeek layout
(`layers.N.attn.wq_a.weight` + `.scale`, FP8 / FP4 / BF16 / F32 / I64).
Every tensor is dequantized to float32, renamed to transformers' parameter names,
loaded strictly, and the model is run once per token sequence (one-shot prefill,
no cache, eager attention, eager experts, float32, one CPU thread).

Outputs in --out:
  seqK_tokens.npy   int32 [T]          the input ids
  seqK_logits.npy   float32 [T, vocab] logits of every position
  seqK_indexer_picks.npy int32 [n_csa_layers, T, index_topk]  compressed entries each query
                    attends in every CSA layer (ascending, -1 = no pick); only if CSA layers exist
  seq0_hidden.npy   float32 [L+1, N, hc_mult, D]  residual streams after the embedding and after
                    every layer, first N positions of sequence 0 (--dump-hidden N, 0 = off)
  MANIFEST.json     how it was made: command, seeds, versions, checkpoint sha256s, load report,
                    indexer tie statistics
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shlex
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native_checkpoint as nc  # noqa: E402

# config.json keys that are not model hyperparameters for DeepseekV4Config.
_NON_MODEL_KEYS = {
    "architectures",
    "model_type",
    "transformers_version",
    "quantization_config",
    "torch_dtype",
    "dtype",
    "auto_map",
    "_name_or_path",
    "expert_dtype",
}


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_config(cfg: dict, allow_default_rope: bool):
    from transformers import DeepseekV4Config

    if cfg.get("model_type", "deepseek_v4") != "deepseek_v4":
        raise SystemExit(f"config model_type is {cfg.get('model_type')!r}, expected 'deepseek_v4'")
    if "qk_rope_head_dim" not in cfg and "partial_rotary_factor" not in cfg and not allow_default_rope:
        raise SystemExit(
            "config.json has neither qk_rope_head_dim nor partial_rotary_factor: transformers would use "
            "64/512 of head_dim as rope dims. Add qk_rope_head_dim, or pass --allow-default-rope."
        )
    kwargs = {k: v for k, v in cfg.items() if k not in _NON_MODEL_KEYS}
    # transformers' strict config rejects a JSON integer (e.g. `"swiglu_limit": 10`) for a field
    # typed `float`; released configs write `10.0`. Coerce, and record that we did.
    coerced = []
    for fld in dataclasses.fields(DeepseekV4Config):
        v = kwargs.get(fld.name)
        if "float" in str(fld.type) and isinstance(v, int) and not isinstance(v, bool):
            kwargs[fld.name] = float(v)
            coerced.append(fld.name)
    config = DeepseekV4Config(**kwargs, attn_implementation="eager", experts_implementation="eager")
    return config, coerced


def make_tokens(seed: int, index: int, length: int, vocab: int) -> np.ndarray:
    rng = np.random.default_rng([seed, index])
    return rng.integers(0, vocab, size=length, dtype=np.int64).astype(np.int32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint directory (native layout)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--lengths", default="300,333,385", help="comma-separated sequence lengths")
    ap.add_argument("--seed", type=int, default=1234, help="token seed; sequence K uses numpy default_rng([seed, K])")
    ap.add_argument("--dump-hidden", type=int, default=160, help="positions of seq 0 whose layer streams are dumped")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mkmodel-cmd", default="", help="command that produced --model (recorded in the manifest)")
    ap.add_argument("--allow-default-rope", action="store_true")
    ap.add_argument("--tie-break", choices=["lowest-index", "torch"], default="lowest-index",
                    help="how exact indexer score ties at the top-k cut are broken (see README)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # only affects the random init that load_state_dict overwrites
    import transformers
    import safetensors
    from transformers import DeepseekV4ForCausalLM
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as mdv4

    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    config, coerced = build_config(cfg, args.allow_default_rope)
    if coerced:
        print(f"note: integer JSON values coerced to float for: {', '.join(coerced)}", file=sys.stderr)
    n_layers = config.num_hidden_layers
    qc = cfg.get("quantization_config") or {}
    configured_block = tuple(qc["weight_block_size"]) if "weight_block_size" in qc else None

    # ---- checkpoint -> float32 state dict
    raw = nc.read_checkpoint(args.model)
    native, dq_report = nc.dequantize_all(raw, configured_block)
    sd, ignored, name_map = nc.to_hf_state_dict(native, n_layers)

    model = DeepseekV4ForCausalLM(config).to(torch.float32).eval()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    shape_bad = sorted(
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(sd) & set(expected)
        if tuple(sd[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shape_bad:
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shape_bad)):
            for it in items:
                print(f"{label}: {it}", file=sys.stderr)
        return 2
    model.load_state_dict(sd, strict=True)
    for k, v in model.state_dict().items():  # paranoia: the loaded values are exactly ours
        if not torch.equal(v, sd[k].to(v.dtype)):
            raise SystemExit(f"{k}: value changed during load")
    if model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr():
        raise SystemExit("lm_head is tied to embed_tokens; expected separate head")
    print(f"loaded {len(sd)} tensors; ignored native tensors: {len(ignored)}", file=sys.stderr)

    # ---- hooks: indexer picks and tie statistics, per-layer streams
    csa_layers = [i for i, t in enumerate(config.layer_types) if t == "compressed_sparse_attention"]
    captured = {"scores": {}, "picks": {}, "hf_picks": {}, "hidden": []}
    m_csa = config.compress_rates["compressed_sparse_attention"]
    hooks = []
    for li in csa_layers:
        idx = model.model.layers[li].self_attn.compressor.indexer

        def score_hook(mod, inp, out, li=li):
            captured["scores"][li] = out.detach()[0].clone()

        def pick_hook(mod, inp, out, li=li):
            # HF breaks exact score ties with torch.topk, whose order is unspecified. Unless
            # --tie-break torch is given, re-select with a fixed rule (higher score first, lower
            # entry index first among equal scores) and hand that to the rest of the layer.
            # Outside exact ties at the cut the chosen set is the same; this is checked.
            hf_picks = out.detach()
            captured["hf_picks"][li] = hf_picks[0].clone()
            if args.tie_break == "torch" or hf_picks.shape[-1] == 0:
                captured["picks"][li] = hf_picks[0].clone()
                return None
            scores = captured["scores"][li]  # [S, C] unmasked
            position_ids = inp[2] if len(inp) > 2 else None
            if position_ids is None:
                raise SystemExit("indexer hook: position_ids not passed positionally")
            threshold = (position_ids[0] + 1) // m_csa  # [S]
            entry = torch.arange(scores.shape[-1])
            masked = scores.masked_fill(entry[None, :] >= threshold[:, None], float("-inf"))
            order = torch.sort(masked, dim=-1, descending=True, stable=True).indices[:, : hf_picks.shape[-1]]
            order = torch.where(order >= threshold[:, None], torch.full_like(order, -1), order)
            captured["picks"][li] = order.clone()
            return order[None].to(hf_picks.dtype)

        hooks.append(idx.scorer.register_forward_hook(score_hook))
        hooks.append(idx.register_forward_hook(pick_hook))

    def stream_hook(mod, inp, out):
        captured["hidden"].append(out.detach()[0].clone())

    def embed_hook(mod, inp, out):
        e = out.detach()[0]
        captured["hidden"].append(e.unsqueeze(1).expand(-1, config.hc_mult, -1).clone())

    os.makedirs(args.out, exist_ok=True)
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    k_top = config.index_topk
    seq_records = []
    tie_stats = {"tie_break": args.tie_break, "queries_with_more_visible_than_topk": 0, "exact_ties_at_cut": 0,
                 "queries_where_rule_changed_torch_choice": 0, "min_nonzero_gap_at_cut": None,
                 "min_nonzero_relative_gap_at_cut": None, "where_exact_ties": []}
    t0 = time.time()
    for si, length in enumerate(lengths):
        tokens = make_tokens(args.seed, si, length, config.vocab_size)
        captured["scores"].clear()
        captured["picks"].clear()
        captured["hf_picks"].clear()
        captured["hidden"].clear()
        extra = []
        if si == 0 and args.dump_hidden > 0:
            extra.append(model.model.embed_tokens.register_forward_hook(embed_hook))
            extra += [layer.register_forward_hook(stream_hook) for layer in model.model.layers]
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(tokens.astype(np.int64))[None], use_cache=False)
        for h in extra:
            h.remove()
        logits = out.logits[0].to(torch.float32).numpy()
        if not np.all(np.isfinite(logits)):
            raise SystemExit(f"sequence {si}: non-finite logits")
        rec = {"index": si, "length": length, "token_seed": [args.seed, si]}
        tok_path = f"seq{si}_tokens.npy"
        log_path = f"seq{si}_logits.npy"
        np.save(os.path.join(args.out, tok_path), tokens)
        np.save(os.path.join(args.out, log_path), logits.astype(np.float32))
        rec["tokens"], rec["logits"] = tok_path, log_path

        if csa_layers:
            picks = np.full((len(csa_layers), length, k_top), -1, dtype=np.int32)
            for j, li in enumerate(csa_layers):
                p = captured["picks"][li].numpy()
                hfp = captured["hf_picks"][li].numpy()
                p = np.where(p < 0, np.iinfo(np.int32).max, p)
                p = np.sort(p, axis=-1)
                p = np.where(p == np.iinfo(np.int32).max, -1, p).astype(np.int32)
                picks[j, :, : p.shape[1]] = p
                scores = captured["scores"][li].numpy()  # [T, C], before causal masking
                for q in range(length):
                    visible = (q + 1) // m_csa
                    tied_at_cut = False
                    if visible > k_top:
                        tie_stats["queries_with_more_visible_than_topk"] += 1
                        row = np.sort(scores[q, :visible])[::-1]
                        gap = float(row[k_top - 1] - row[k_top])
                        if gap == 0.0:
                            tied_at_cut = True
                            tie_stats["exact_ties_at_cut"] += 1
                            if len(tie_stats["where_exact_ties"]) < 50:
                                tie_stats["where_exact_ties"].append([si, li, q, float(row[k_top - 1])])
                        else:
                            rel = gap / max(abs(float(row[k_top - 1])), abs(float(row[k_top])), 1e-30)
                            if tie_stats["min_nonzero_gap_at_cut"] is None or gap < tie_stats["min_nonzero_gap_at_cut"]:
                                tie_stats["min_nonzero_gap_at_cut"] = gap
                            if (tie_stats["min_nonzero_relative_gap_at_cut"] is None
                                    or rel < tie_stats["min_nonzero_relative_gap_at_cut"]):
                                tie_stats["min_nonzero_relative_gap_at_cut"] = rel
                    mine = set(int(x) for x in p[q] if x >= 0)
                    theirs = set(int(x) for x in hfp[q] if x >= 0)
                    if mine != theirs:
                        if not tied_at_cut:
                            raise SystemExit(f"seq {si} layer {li} query {q}: tie rule changed picks without a tie")
                        tie_stats["queries_where_rule_changed_torch_choice"] += 1
            pk_path = f"seq{si}_indexer_picks.npy"
            np.save(os.path.join(args.out, pk_path), picks)
            rec["indexer_picks"] = pk_path
            rec["indexer_picks_layers"] = csa_layers

        if si == 0 and args.dump_hidden > 0:
            n = min(args.dump_hidden, length)
            hid = np.stack([h[:n].numpy() for h in captured["hidden"]]).astype(np.float32)
            hid_path = "seq0_hidden.npy"
            np.save(os.path.join(args.out, hid_path), hid)
            rec["hidden"] = hid_path
            rec["hidden_layout"] = "[embedding, after layer 0, ..., after layer L-1] x positions [0, N) x streams x D"
        seq_records.append(rec)
        print(f"sequence {si}: T={length} done", file=sys.stderr)
    for h in hooks:
        h.remove()

    for rec in seq_records:
        rec["sha256"] = {
            k: sha256_file(os.path.join(args.out, rec[k]))
            for k in ("tokens", "logits", "indexer_picks", "hidden")
            if k in rec
        }

    fmt_counts: dict[str, int] = {}
    for v in dq_report.formats.values():
        key = v.split(" block")[0].split(" per")[0]
        fmt_counts[key] = fmt_counts.get(key, 0) + 1
    manifest = {
        "generator": "tools/reference/make_fixtures.py",
        "command": "python tools/reference/make_fixtures.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "checkpoint": {
            "mkmodel_command": args.mkmodel_cmd,
            "files_sha256": {
                os.path.basename(p): sha256_file(p)
                for p in sorted(
                    [os.path.join(args.model, "config.json")]
                    + nc.checkpoint_files(args.model)
                    + (
                        [os.path.join(args.model, "model.safetensors.index.json")]
                        if os.path.exists(os.path.join(args.model, "model.safetensors.index.json"))
                        else []
                    )
                )
            },
            "config": cfg,
        },
        "hf_config": {
            "layer_types": config.layer_types,
            "mlp_layer_types": config.mlp_layer_types,
            "compress_rates": config.compress_rates,
            "rope_parameters": config.rope_parameters,
            "qk_rope_head_dim": config.qk_rope_head_dim,
            "int_values_coerced_to_float": coerced,
        },
        "run": {
            "dtype": "float32",
            "attn_implementation": config._attn_implementation,
            "experts_implementation": config._experts_implementation,
            "use_cache": False,
            "mode": "one-shot prefill from position 0, batch 1",
            "threads": args.threads,
            "seconds": round(time.time() - t0, 2),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
            "modeling_file_sha256": sha256_file(mdv4.__file__),
        },
        "load_report": {
            "tensors_loaded": len(sd),
            "native_tensors_ignored": ignored,
            "decoded_formats": fmt_counts,
        },
        "indexer_ties": tie_stats,
        "sequences": seq_records,
    }
    with open(os.path.join(args.out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    print(json.dumps({"indexer_ties": tie_stats}, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
