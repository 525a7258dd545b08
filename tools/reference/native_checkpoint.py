"""Read a DeepSeek-V4 checkpoint in the native released layout and turn it into
float32 tensors named the way transformers' DeepseekV4ForCausalLM names them.

Layout handled (see shared/spec/attention-and-formats.md §2.1, §7):
  * safetensors files (one file, or shards listed by model.safetensors.index.json);
  * F8_E4M3 weights with an F8_E8M0 `<name>.scale` of block scales (block size
    from config quantization_config.weight_block_size, else inferred from shapes);
  * I8 routed-expert weights packing two FP4 (e2m1) codes per byte, low nibble
    first, with an F8_E8M0 scale per 32 inputs;
  * BF16 / F16 / F32 plain tensors, I64 / I32 integer tensors (tid2eid).

The safetensors container is parsed here directly (header + raw bytes) so that
every decoding step is explicit and independent of library dtype support.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass, field

import numpy as np
import torch

# --------------------------------------------------------------------------
# Container parsing


@dataclass
class RawTensor:
    name: str
    dtype: str  # safetensors dtype string
    shape: tuple
    data: bytes
    file: str


def _read_safetensors(path: str) -> dict[str, RawTensor]:
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = RawTensor(name, info["dtype"], tuple(info["shape"]), blob[base + start : base + end], path)
    return out


def checkpoint_files(model_dir: str) -> list[str]:
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        files = sorted(p for p in os.listdir(model_dir) if p.endswith(".safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors files in {model_dir}")
    return [os.path.join(model_dir, p) for p in files]


def read_checkpoint(model_dir: str) -> dict[str, RawTensor]:
    tensors: dict[str, RawTensor] = {}
    for path in checkpoint_files(model_dir):
        for name, t in _read_safetensors(path).items():
            if name in tensors:
                raise ValueError(f"tensor {name} appears in two files")
            tensors[name] = t
    return tensors


# --------------------------------------------------------------------------
# Element decoding


def _e4m3fn_table() -> np.ndarray:
    """float32 value of every byte interpreted as float8 e4m3fn (NaN at 0x7f/0xff)."""
    vals = np.zeros(256, dtype=np.float64)
    for b in range(256):
        sign = -1.0 if b & 0x80 else 1.0
        exp = (b >> 3) & 0xF
        man = b & 0x7
        if exp == 0xF and man == 0x7:
            vals[b] = np.nan
        elif exp == 0:
            vals[b] = sign * (man / 8.0) * 2.0**-6
        else:
            vals[b] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return vals.astype(np.float32)


E4M3_TABLE = _e4m3fn_table()
E2M1_TABLE = np.array(
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float32
)


def e8m0_to_f32(codes: np.ndarray) -> np.ndarray:
    codes = codes.astype(np.int32)
    out = np.ldexp(np.float32(1.0), codes - 127).astype(np.float32)
    out[codes == 255] = np.nan
    return out


def decode_plain(t: RawTensor) -> np.ndarray:
    """Decode a tensor without any scale (element-wise dtypes)."""
    d = t.dtype
    if d == "F32":
        a = np.frombuffer(t.data, dtype="<f4")
    elif d == "F16":
        a = np.frombuffer(t.data, dtype="<f2").astype(np.float32)
    elif d == "BF16":
        a = (np.frombuffer(t.data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif d == "F64":
        a = np.frombuffer(t.data, dtype="<f8").astype(np.float32)
    elif d == "I64":
        a = np.frombuffer(t.data, dtype="<i8")
    elif d == "I32":
        a = np.frombuffer(t.data, dtype="<i4").astype(np.int64)
    elif d == "I16":
        a = np.frombuffer(t.data, dtype="<i2").astype(np.int64)
    elif d in ("I8", "U8"):
        a = np.frombuffer(t.data, dtype=np.int8 if d == "I8" else np.uint8)
    elif d == "F8_E4M3":
        a = E4M3_TABLE[np.frombuffer(t.data, dtype=np.uint8)]
    elif d == "F8_E8M0":
        a = e8m0_to_f32(np.frombuffer(t.data, dtype=np.uint8))
    else:
        raise ValueError(f"{t.name}: unsupported dtype {d}")
    return np.array(a).reshape(t.shape)


def _block_size(weight_shape, scale_shape, configured) -> tuple[int, int]:
    out_f, in_f = weight_shape
    s_out, s_in = scale_shape
    if configured is not None:
        bo, bi = configured
        if -(-out_f // bo) == s_out and -(-in_f // bi) == s_in:
            return bo, bi
    for b in (128, 64, 32, 16):
        if -(-out_f // b) == s_out and -(-in_f // b) == s_in:
            return b, b
    raise ValueError(f"cannot infer block size for weight {weight_shape} / scale {scale_shape}")


def dequant_fp8_block(w: RawTensor, s: RawTensor, configured_block) -> np.ndarray:
    wv = decode_plain(w).astype(np.float32)
    sv = decode_plain(s).astype(np.float32)
    bo, bi = _block_size(w.shape, s.shape, configured_block)
    full = np.repeat(np.repeat(sv, bo, axis=0), bi, axis=1)[: w.shape[0], : w.shape[1]]
    return wv * full


def dequant_fp4_packed(w: RawTensor, s: RawTensor) -> np.ndarray:
    """I8 [out, in/2], byte k holds logical elements 2k (low nibble) and 2k+1 (high nibble);
    F8_E8M0 scale [out, in/32]."""
    raw = np.frombuffer(w.data, dtype=np.uint8).reshape(w.shape)
    out_f, half = w.shape
    codes = np.empty((out_f, 2 * half), dtype=np.uint8)
    codes[:, 0::2] = raw & 0x0F
    codes[:, 1::2] = raw >> 4
    vals = E2M1_TABLE[codes]
    sv = decode_plain(s).astype(np.float32)
    group = (2 * half) // s.shape[1]
    if group * s.shape[1] != 2 * half:
        raise ValueError(f"{w.name}: FP4 scale shape {s.shape} does not divide width {2 * half}")
    return vals * np.repeat(sv, group, axis=1)


@dataclass
class DequantReport:
    formats: dict = field(default_factory=dict)  # native name -> how it was decoded
    ignored: list = field(default_factory=list)  # native names not used (mtp.*, ...)


def dequantize_all(raw: dict[str, RawTensor], configured_block) -> tuple[dict[str, np.ndarray], DequantReport]:
    """Return {native weight name: float32 (or int64) array}; `.scale` tensors are consumed."""
    report = DequantReport()
    out: dict[str, np.ndarray] = {}
    for name, t in raw.items():
        if name.endswith(".scale"):
            base = name[: -len(".scale")] + ".weight"
            if base not in raw:
                raise ValueError(f"scale {name} has no weight {base}")
            continue
        scale_name = name[: -len(".weight")] + ".scale" if name.endswith(".weight") else None
        if scale_name is not None and scale_name in raw:
            s = raw[scale_name]
            if s.dtype != "F8_E8M0":
                raise ValueError(f"{scale_name}: expected F8_E8M0, got {s.dtype}")
            if t.dtype == "F8_E4M3":
                out[name] = dequant_fp8_block(t, s, configured_block)
                report.formats[name] = f"fp8_e4m3 x e8m0 block {_block_size(t.shape, s.shape, configured_block)}"
            elif t.dtype in ("I8", "U8"):
                out[name] = dequant_fp4_packed(t, s)
                report.formats[name] = f"fp4_e2m1 packed x e8m0 per {2 * t.shape[1] // s.shape[1]}"
            else:
                raise ValueError(f"{name}: dtype {t.dtype} with a scale tensor is not a known format")
        else:
            if t.dtype in ("F8_E4M3", "I8") and not name.endswith("tid2eid"):
                raise ValueError(f"{name}: quantized dtype {t.dtype} without a .scale")
            v = decode_plain(t)
            out[name] = v if v.dtype == np.int64 else v.astype(np.float32)
            report.formats[name] = t.dtype
        if out[name].dtype != np.int64 and not np.all(np.isfinite(out[name])):
            raise ValueError(f"{name}: non-finite values after decoding")
    return out, report


# --------------------------------------------------------------------------
# Native -> transformers names

# Per-layer renames, applied to the part after "layers.N." (order matters: longest first).
_LAYER_RULES = [
    (r"^attn_norm\.weight$", "input_layernorm.weight"),
    (r"^ffn_norm\.weight$", "post_attention_layernorm.weight"),
    (r"^hc_attn_(fn|base|scale)$", r"attn_hc.\1"),
    (r"^hc_ffn_(fn|base|scale)$", r"ffn_hc.\1"),
    (r"^attn\.attn_sink$", "self_attn.sinks"),
    (r"^attn\.wq_a\.weight$", "self_attn.q_a_proj.weight"),
    (r"^attn\.q_norm\.weight$", "self_attn.q_a_norm.weight"),
    (r"^attn\.wq_b\.weight$", "self_attn.q_b_proj.weight"),
    (r"^attn\.wkv\.weight$", "self_attn.kv_proj.weight"),
    (r"^attn\.kv_norm\.weight$", "self_attn.kv_norm.weight"),
    (r"^attn\.wo_a\.weight$", "self_attn.o_a_proj.weight"),
    (r"^attn\.wo_b\.weight$", "self_attn.o_b_proj.weight"),
    (r"^attn\.compressor\.wkv\.weight$", "self_attn.compressor.kv_proj.weight"),
    (r"^attn\.compressor\.wgate\.weight$", "self_attn.compressor.gate_proj.weight"),
    (r"^attn\.compressor\.ape$", "self_attn.compressor.position_bias"),
    (r"^attn\.compressor\.norm\.weight$", "self_attn.compressor.kv_norm.weight"),
    (r"^attn\.indexer\.wq_b\.weight$", "self_attn.compressor.indexer.q_b_proj.weight"),
    (r"^attn\.indexer\.weights_proj\.weight$", "self_attn.compressor.indexer.scorer.weights_proj.weight"),
    (r"^attn\.indexer\.compressor\.wkv\.weight$", "self_attn.compressor.indexer.kv_proj.weight"),
    (r"^attn\.indexer\.compressor\.wgate\.weight$", "self_attn.compressor.indexer.gate_proj.weight"),
    (r"^attn\.indexer\.compressor\.ape$", "self_attn.compressor.indexer.position_bias"),
    (r"^attn\.indexer\.compressor\.norm\.weight$", "self_attn.compressor.indexer.kv_norm.weight"),
    (r"^ffn\.gate\.weight$", "mlp.gate.weight"),
    (r"^ffn\.gate\.bias$", "mlp.gate.e_score_correction_bias"),
    (r"^ffn\.gate\.tid2eid$", "mlp.gate.tid2eid"),
    (r"^ffn\.shared_experts\.w1\.weight$", "mlp.shared_experts.gate_proj.weight"),
    (r"^ffn\.shared_experts\.w3\.weight$", "mlp.shared_experts.up_proj.weight"),
    (r"^ffn\.shared_experts\.w2\.weight$", "mlp.shared_experts.down_proj.weight"),
]
_GLOBAL_RULES = {
    "embed.weight": "model.embed_tokens.weight",
    "head.weight": "lm_head.weight",
    "norm.weight": "model.norm.weight",
    "hc_head_fn": "model.hc_head.hc_fn",
    "hc_head_base": "model.hc_head.hc_base",
    "hc_head_scale": "model.hc_head.hc_scale",
}
_EXPERT_RE = re.compile(r"^layers\.(\d+)\.ffn\.experts\.(\d+)\.(w1|w2|w3)\.weight$")
_LAYER_RE = re.compile(r"^layers\.(\d+)\.(.+)$")


def to_hf_state_dict(native: dict[str, np.ndarray], num_layers: int) -> tuple[dict[str, torch.Tensor], list, dict]:
    """Map native names to transformers names, fusing routed experts.

    Returns (state_dict, ignored native names, name map native->hf for the record).
    Routed experts become gate_up_proj[E] = rows [w1; w3] ([E, 2I, D]) and down_proj[E] = w2 ([E, D, I]).
    """
    sd: dict[str, torch.Tensor] = {}
    ignored = []
    name_map = {}
    experts: dict[int, dict[int, dict[str, np.ndarray]]] = {}
    for name, arr in native.items():
        if name.startswith("mtp."):
            ignored.append(name)
            continue
        if name in _GLOBAL_RULES:
            hf = _GLOBAL_RULES[name]
        else:
            m = _EXPERT_RE.match(name)
            if m:
                layer, e, which = int(m.group(1)), int(m.group(2)), m.group(3)
                experts.setdefault(layer, {}).setdefault(e, {})[which] = arr
                name_map[name] = f"model.layers.{layer}.mlp.experts.{'down_proj' if which == 'w2' else 'gate_up_proj'}[{e}]"
                continue
            m = _LAYER_RE.match(name)
            if not m or int(m.group(1)) >= num_layers:
                ignored.append(name)
                continue
            rest = m.group(2)
            hf = None
            for pat, rep in _LAYER_RULES:
                if re.match(pat, rest):
                    hf = f"model.layers.{m.group(1)}." + re.sub(pat, rep, rest)
                    break
            if hf is None:
                ignored.append(name)
                continue
        name_map[name] = hf
        sd[hf] = torch.from_numpy(np.ascontiguousarray(arr))
    for layer, per in experts.items():
        n = max(per) + 1
        if sorted(per) != list(range(n)):
            raise ValueError(f"layer {layer}: expert ids not contiguous: {sorted(per)}")
        gate_up, down = [], []
        for e in range(n):
            w = per[e]
            if set(w) != {"w1", "w2", "w3"}:
                raise ValueError(f"layer {layer} expert {e}: has {sorted(w)}")
            gate_up.append(np.concatenate([w["w1"], w["w3"]], axis=0))
            down.append(w["w2"])
        sd[f"model.layers.{layer}.mlp.experts.gate_up_proj"] = torch.from_numpy(np.stack(gate_up))
        sd[f"model.layers.{layer}.mlp.experts.down_proj"] = torch.from_numpy(np.stack(down))
    return sd, sorted(ignored), name_map
