"""Export a training checkpoint to the released DeepSeek-V4 layout (native names, FP8/FP4).

Formats (shared/spec/attention-and-formats.md §7):
  * FP8 e4m3 + F8_E8M0 block scales [ceil(out/128), ceil(in/128)]: attention wq_a, wq_b, wkv,
    wo_a, wo_b, indexer wq_b, shared-expert w1/w2/w3. Per block the scale is the smallest power
    of two s with absmax/s <= 448; values are rounded to nearest even e4m3.
  * FP4 e2m1 packed in I8 [out, in/2] (low nibble = even element) + F8_E8M0 scale [out, in/32]:
    routed experts w1/w2/w3. Smallest power of two s with absmax/s <= 6; round to nearest even.
  * BF16: embed, head, all norms, router gate weight, compressor wkv/wgate, indexer weights_proj,
    indexer compressor wkv/wgate.  F32: hc_*, ape, attn_sink, gate.bias.  I64: tid2eid.

Also writes config.json (HF spelling) and reports the quantisation error per tensor class.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (puts tools/reference on sys.path)
import native_checkpoint as nc  # noqa: E402

# HF (per layer, after "model.layers.N.") -> native. Inverse of tools/reference/native_checkpoint.py.
_HF_LAYER = [
    (r"^input_layernorm\.weight$", "attn_norm.weight"),
    (r"^post_attention_layernorm\.weight$", "ffn_norm.weight"),
    (r"^attn_hc\.(fn|base|scale)$", r"hc_attn_\1"),
    (r"^ffn_hc\.(fn|base|scale)$", r"hc_ffn_\1"),
    (r"^self_attn\.sinks$", "attn.attn_sink"),
    (r"^self_attn\.q_a_proj\.weight$", "attn.wq_a.weight"),
    (r"^self_attn\.q_a_norm\.weight$", "attn.q_norm.weight"),
    (r"^self_attn\.q_b_proj\.weight$", "attn.wq_b.weight"),
    (r"^self_attn\.kv_proj\.weight$", "attn.wkv.weight"),
    (r"^self_attn\.kv_norm\.weight$", "attn.kv_norm.weight"),
    (r"^self_attn\.o_a_proj\.weight$", "attn.wo_a.weight"),
    (r"^self_attn\.o_b_proj\.weight$", "attn.wo_b.weight"),
    (r"^self_attn\.compressor\.kv_proj\.weight$", "attn.compressor.wkv.weight"),
    (r"^self_attn\.compressor\.gate_proj\.weight$", "attn.compressor.wgate.weight"),
    (r"^self_attn\.compressor\.position_bias$", "attn.compressor.ape"),
    (r"^self_attn\.compressor\.kv_norm\.weight$", "attn.compressor.norm.weight"),
    (r"^self_attn\.compressor\.indexer\.q_b_proj\.weight$", "attn.indexer.wq_b.weight"),
    (r"^self_attn\.compressor\.indexer\.scorer\.weights_proj\.weight$", "attn.indexer.weights_proj.weight"),
    (r"^self_attn\.compressor\.indexer\.kv_proj\.weight$", "attn.indexer.compressor.wkv.weight"),
    (r"^self_attn\.compressor\.indexer\.gate_proj\.weight$", "attn.indexer.compressor.wgate.weight"),
    (r"^self_attn\.compressor\.indexer\.position_bias$", "attn.indexer.compressor.ape"),
    (r"^self_attn\.compressor\.indexer\.kv_norm\.weight$", "attn.indexer.compressor.norm.weight"),
    (r"^mlp\.gate\.weight$", "ffn.gate.weight"),
    (r"^mlp\.gate\.e_score_correction_bias$", "ffn.gate.bias"),
    (r"^mlp\.gate\.tid2eid$", "ffn.gate.tid2eid"),
    (r"^mlp\.shared_experts\.gate_proj\.weight$", "ffn.shared_experts.w1.weight"),
    (r"^mlp\.shared_experts\.up_proj\.weight$", "ffn.shared_experts.w3.weight"),
    (r"^mlp\.shared_experts\.down_proj\.weight$", "ffn.shared_experts.w2.weight"),
]
_HF_GLOBAL = {
    "model.embed_tokens.weight": "embed.weight",
    "lm_head.weight": "head.weight",
    "model.norm.weight": "norm.weight",
    "model.hc_head.hc_fn": "hc_head_fn",
    "model.hc_head.hc_base": "hc_head_base",
    "model.hc_head.hc_scale": "hc_head_scale",
}
_FP8 = re.compile(r"(attn\.(wq_a|wq_b|wkv|wo_a|wo_b)|attn\.indexer\.wq_b|ffn\.shared_experts\.w[123])\.weight$")
_F32 = re.compile(r"(hc_(attn|ffn|head)_(fn|base|scale)|\.ape|attn_sink|ffn\.gate\.bias)$")


def weight_format(native_name: str) -> str:
    """How export() stores a native tensor: "I64", "FP4", "FP8", "F32" or "BF16"."""
    if native_name.endswith("tid2eid"):
        return "I64"
    if ".ffn.experts." in native_name:
        return "FP4"
    if _FP8.search(native_name):
        return "FP8"
    if _F32.search(native_name):
        return "F32"
    return "BF16"


def hf_to_native(sd: dict) -> dict:
    """HF state dict -> {native name: float32/int64 tensor}; fused experts split into w1/w3/w2."""
    out = {}
    for k, v in sd.items():
        v = v.detach().cpu()
        if k in _HF_GLOBAL:
            out[_HF_GLOBAL[k]] = v
            continue
        m = re.match(r"^model\.layers\.(\d+)\.(.+)$", k)
        if not m:
            raise ValueError(f"unmapped parameter {k}")
        L, rest = m.group(1), m.group(2)
        if rest == "mlp.experts.gate_up_proj":  # [E, 2I, D]
            inter = v.shape[1] // 2
            for e in range(v.shape[0]):
                out[f"layers.{L}.ffn.experts.{e}.w1.weight"] = v[e, :inter]
                out[f"layers.{L}.ffn.experts.{e}.w3.weight"] = v[e, inter:]
            continue
        if rest == "mlp.experts.down_proj":  # [E, D, I]
            for e in range(v.shape[0]):
                out[f"layers.{L}.ffn.experts.{e}.w2.weight"] = v[e]
            continue
        for pat, rep in _HF_LAYER:
            if re.match(pat, rest):
                out[f"layers.{L}." + re.sub(pat, rep, rest)] = v
                break
        else:
            raise ValueError(f"unmapped parameter {k}")
    return out


def pow2_scale_exponent(amax: np.ndarray, qmax: float) -> np.ndarray:
    """Smallest integer e with amax / 2^e <= qmax (amax 0 -> e such that scale is 1)."""
    r = np.where(amax > 0, amax / qmax, 1.0).astype(np.float64)
    m, k = np.frexp(r)  # r = m * 2^k, m in [0.5, 1)
    e = np.where(m == 0.5, k - 1, k)
    return e.astype(np.int32)


def quant_fp8_block(w: np.ndarray, block=128):
    rows, cols = w.shape
    br, bc = -(-rows // block), -(-cols // block)
    pad = np.zeros((br * block, bc * block), dtype=np.float32)
    pad[:rows, :cols] = w
    blocks = np.abs(pad.reshape(br, block, bc, block)).max(axis=(1, 3))
    e = pow2_scale_exponent(blocks, 448.0)
    assert np.all(e + 127 >= 0) and np.all(e + 127 <= 254)
    scale = np.ldexp(np.float32(1.0), e).astype(np.float32)
    full = np.repeat(np.repeat(scale, block, 0), block, 1)[:rows, :cols]
    q = torch.from_numpy((w / full).astype(np.float32)).to(torch.float8_e4m3fn)  # RNE
    qb = q.view(torch.uint8).numpy()
    assert not np.any((qb & 0x7F) == 0x7F), "NaN code in e4m3 output"
    return qb, (e + 127).astype(np.uint8)


E2M1_GRID = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], dtype=np.float32)


def quant_fp4(w: np.ndarray, group=32):
    rows, cols = w.shape
    assert cols % group == 0 and cols % 2 == 0
    g = w.reshape(rows, cols // group, group)
    e = pow2_scale_exponent(np.abs(g).max(axis=2), 6.0)
    assert np.all(e + 127 >= 0) and np.all(e + 127 <= 254)
    x = g / np.ldexp(np.float32(1.0), e)[..., None].astype(np.float32)
    mag = np.abs(x).reshape(-1)
    d = np.abs(mag[:, None] - E2M1_GRID[None, :])
    best = d.min(axis=1, keepdims=True)
    tied = d == best
    even = (np.arange(8) % 2 == 0)[None, :]
    code = np.argmax(tied * (1 + even), axis=1).astype(np.uint8)  # ties -> even code (RNE)
    sign = ((x.reshape(-1) < 0) & (code > 0)).astype(np.uint8) << 3
    code = (code | sign).reshape(rows, cols)
    packed = (code[:, 0::2] | (code[:, 1::2] << 4)).astype(np.uint8)
    return packed.view(np.int8), (e + 127).astype(np.uint8)


def to_bf16_bytes(v: np.ndarray) -> bytes:
    return torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)).to(torch.bfloat16).view(torch.int16).numpy().tobytes()


def write_safetensors(path: str, tensors: dict, metadata: dict | None = None):
    """tensors: name -> (dtype string, shape, bytes). Names sorted; data 8-byte aligned."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        dt, shape, data = tensors[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def export(sd: dict, cfg: dict, out_dir: str) -> dict:
    native = hf_to_native(sd)
    block = cfg["quantization_config"]["weight_block_size"][0]
    tensors, kinds = {}, {}
    for name, t in native.items():
        v = t.numpy()
        kind = kinds[name] = weight_format(name)
        if kind == "I64":
            tensors[name] = ("I64", v.shape, np.ascontiguousarray(v, dtype="<i8").tobytes())
        elif kind == "FP4":
            q, s = quant_fp4(v.astype(np.float32))
            tensors[name] = ("I8", q.shape, q.tobytes())
            tensors[name[: -len(".weight")] + ".scale"] = ("F8_E8M0", s.shape, s.tobytes())
        elif kind == "FP8":
            q, s = quant_fp8_block(v.astype(np.float32), block)
            tensors[name] = ("F8_E4M3", q.shape, q.tobytes())
            tensors[name[: -len(".weight")] + ".scale"] = ("F8_E8M0", s.shape, s.tobytes())
        elif kind == "F32":
            tensors[name] = ("F32", v.shape, np.ascontiguousarray(v, dtype="<f4").tobytes())
        else:
            tensors[name] = ("BF16", v.shape, to_bf16_bytes(v))
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    return {"native": native, "kinds": kinds}


def load_dequantized(model_dir: str):
    """Load an exported native checkpoint back into transformers (float32), strictly."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    raw = nc.read_checkpoint(model_dir)
    qc = cfg.get("quantization_config") or {}
    native, _ = nc.dequantize_all(raw, tuple(qc["weight_block_size"]) if "weight_block_size" in qc else None)
    config, model = common.build_model(cfg)
    sd, ignored, _ = nc.to_hf_state_dict(native, config.num_hidden_layers)
    exp = model.state_dict()
    missing, extra = set(exp) - set(sd), set(sd) - set(exp)
    if missing or extra or ignored:
        raise SystemExit(f"load mismatch: missing {sorted(missing)} extra {sorted(extra)} ignored {ignored}")
    model.load_state_dict(sd, strict=True)
    return cfg, model.eval(), native


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="ckpt.pt written by train.py")
    ap.add_argument("--out", required=True, help="model directory (config.json, model.safetensors)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    cfg = common.clean_config(ck["config"])
    res = export(ck["model"], cfg, args.out)
    # round trip: dequantised export vs trained weights, per format
    _, _, deq = load_dequantized(args.out)
    errs = {}
    for name, kind in res["kinds"].items():
        a = res["native"][name].numpy().astype(np.float64)
        b = deq[name].astype(np.float64)
        if kind == "I64":
            assert np.array_equal(a, b), name
            continue
        rel = np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)
        e = errs.setdefault(kind, {"tensors": 0, "params": 0, "max_rel_l2": 0.0})
        e["tensors"] += 1
        e["params"] += a.size
        e["max_rel_l2"] = max(e["max_rel_l2"], float(rel))
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    rep = {"step": ck["step"], "train_seconds": ck["elapsed"], "model_safetensors_bytes": size, "formats": errs}
    print(json.dumps(rep, indent=1))
    with open(os.path.join(args.out, "export_report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
