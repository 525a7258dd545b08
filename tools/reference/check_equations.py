#!/usr/bin/env python3
"""Independent float64 NumPy forward pass written from docs/reference-differences.md,
compared with the logits written by make_fixtures.py.

    python tools/reference/check_equations.py --model DIR --fixtures DIR

It reads the native checkpoint (native tensor names, no transformers involved), evaluates the
equations of the note, and reports the largest absolute logit difference per sequence. A small
difference (float32 vs float64 rounding, ~1e-5) means the note describes what transformers
computes. Indexer ties are broken as make_fixtures.py's default rule (lower entry index wins).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native_checkpoint as nc  # noqa: E402


def rms(x, eps, w=None):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * w if w is not None else y


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


class Rope:
    def __init__(self, dim, base, yarn=None):
        i = np.arange(dim // 2, dtype=np.float64)
        theta = base ** (-2.0 * i / dim)
        if yarn is not None:
            f, L, bf, bs = yarn["factor"], yarn["original_max_position_embeddings"], yarn["beta_fast"], yarn["beta_slow"]

            def corr(r):
                return dim * math.log(L / (2 * math.pi * r)) / (2 * math.log(base))

            low = max(math.floor(corr(bf)), 0)
            high = min(math.ceil(corr(bs)), dim - 1)
            if high == low:
                high += 0.001
            ramp = np.clip((i - low) / (high - low), 0, 1)
            theta = theta * (1 - ramp) + theta / f * ramp
        self.theta = theta
        self.dim = dim

    def apply(self, x, pos, inverse=False):
        """x [..., T?, C] with pos broadcastable to x[..., 0]: rotate adjacent pairs of the last dim channels."""
        ang = np.asarray(pos, dtype=np.float64)[..., None] * self.theta
        c, s = np.cos(ang), np.sin(ang)
        if inverse:
            s = -s
        y = x.copy()
        r = y[..., -self.dim :]
        ev, od = r[..., 0::2].copy(), r[..., 1::2].copy()
        r[..., 0::2] = ev * c - od * s
        r[..., 1::2] = ev * s + od * c
        return y


def mhc_coeffs(X, fn, base, scale, cfg):
    """X [T, n, D] -> pre [T,n], post [T,n], C [T,n,n]."""
    T, n, D = X.shape
    x = rms(X.reshape(T, n * D), cfg["rms_norm_eps"])
    mu = x @ fn.T
    eps = cfg["hc_eps"]
    pre = sigmoid(mu[:, :n] * scale[0] + base[:n]) + eps
    post = 2 * sigmoid(mu[:, n : 2 * n] * scale[1] + base[n : 2 * n])
    C = softmax((mu[:, 2 * n :] * scale[2] + base[2 * n :]).reshape(T, n, n), axis=-1) + eps
    C = C / (C.sum(axis=-2, keepdims=True) + eps)
    for _ in range(cfg["hc_sinkhorn_iters"] - 1):
        C = C / (C.sum(axis=-1, keepdims=True) + eps)
        C = C / (C.sum(axis=-2, keepdims=True) + eps)
    return pre, post, C


def csa_pool(x, wkv, wgate, ape, norm_w, dd, m, rope, eps):
    T = x.shape[0]
    n = T // m
    if n == 0:
        return np.zeros((0, dd))
    a = x[: n * m] @ wkv.T
    z = x[: n * m] @ wgate.T + np.tile(ape, (n, 1))
    a = a.reshape(n, m, 2 * dd)
    z = z.reshape(n, m, 2 * dd)
    out = np.zeros((n, dd))
    for w in range(n):
        vals = [a[w, :, dd:]]
        logits = [z[w, :, dd:]]
        if w > 0:
            vals.insert(0, a[w - 1, :, :dd])
            logits.insert(0, z[w - 1, :, :dd])
        v = np.concatenate(vals)
        g = softmax(np.concatenate(logits), axis=0)
        out[w] = (v * g).sum(0)
    out = rms(out, eps, norm_w)
    return rope.apply(out, np.arange(n) * m)


def hca_pool(x, wkv, wgate, ape, norm_w, dd, m, rope, eps):
    T = x.shape[0]
    n = T // m
    if n == 0:
        return np.zeros((0, dd))
    a = (x[: n * m] @ wkv.T).reshape(n, m, dd)
    z = (x[: n * m] @ wgate.T).reshape(n, m, dd) + ape[None]
    out = (a * softmax(z, axis=1)).sum(1)
    out = rms(out, eps, norm_w)
    return rope.apply(out, np.arange(n) * m)


def forward(W, cfg, tokens):
    g = W.get
    D, H, d = cfg["hidden_size"], cfg["num_attention_heads"], cfg["head_dim"]
    rd = cfg["qk_rope_head_dim"]
    G, W_win = cfg["o_groups"], cfg["sliding_window"]
    eps = cfg["rms_norm_eps"]
    ratios = cfg["compress_ratios"][: cfg["num_hidden_layers"]]
    n_hash = cfg.get("num_hash_layers", 3)
    HI, dI, kI = cfg["index_n_heads"], cfg["index_head_dim"], cfg["index_topk"]
    lim, rsf, K = cfg["swiglu_limit"], cfg["routed_scaling_factor"], cfg["num_experts_per_tok"]
    E = cfg["n_routed_experts"]
    ys = cfg.get("rope_scaling")
    yarn = ys if ys and ys.get("type", ys.get("rope_type")) == "yarn" else None
    main_rope = Rope(rd, cfg["rope_theta"])
    comp_rope = Rope(rd, cfg["compress_rope_theta"], yarn)
    T = len(tokens)
    pos = np.arange(T)
    n_streams = cfg["hc_mult"]
    X = np.repeat(g("embed.weight")[tokens][:, None, :], n_streams, axis=1)

    for li, ratio in enumerate(ratios):
        p = f"layers.{li}."
        rope = main_rope if ratio == 0 else comp_rope
        # ---- attention site
        pre, post, C = mhc_coeffs(X, g(p + "hc_attn_fn"), g(p + "hc_attn_base"), g(p + "hc_attn_scale"), cfg)
        x = rms((pre[..., None] * X).sum(1), eps, g(p + "attn_norm.weight"))
        a = p + "attn."
        cq = rms(x @ g(a + "wq_a.weight").T, eps, g(a + "q_norm.weight"))
        q = (cq @ g(a + "wq_b.weight").T).reshape(T, H, d)
        q = rms(q, eps)
        q = rope.apply(q, pos[:, None])
        kv = rope.apply(rms(x @ g(a + "wkv.weight").T, eps, g(a + "kv_norm.weight")), pos)
        i_idx, j_idx = np.meshgrid(pos, pos, indexing="ij")
        allow_win = (j_idx <= i_idx) & (j_idx > i_idx - W_win)  # [T, T]
        keys = [kv]
        allow = [allow_win]
        if ratio == 4:
            ck = csa_pool(x, g(a + "compressor.wkv.weight"), g(a + "compressor.wgate.weight"), g(a + "compressor.ape"),
                          g(a + "compressor.norm.weight"), d, 4, comp_rope, eps)
            ik = csa_pool(x, g(a + "indexer.compressor.wkv.weight"), g(a + "indexer.compressor.wgate.weight"),
                          g(a + "indexer.compressor.ape"), g(a + "indexer.compressor.norm.weight"), dI, 4, comp_rope, eps)
            qi = comp_rope.apply((cq @ g(a + "indexer.wq_b.weight").T).reshape(T, HI, dI), pos[:, None])
            om = (x @ g(a + "indexer.weights_proj.weight").T) * HI**-0.5  # [T, HI]
            sc = np.einsum("th,thc->tc", om, np.maximum(np.einsum("thd,cd->thc", qi, ik), 0) * dI**-0.5)
            sel = np.zeros((T, ck.shape[0]), dtype=bool)
            for t in range(T):
                vis = (t + 1) // 4
                if vis == 0:
                    continue
                order = sorted(range(vis), key=lambda e: (-sc[t, e], e))[:kI]
                sel[t, order] = True
            keys.append(ck)
            allow.append(sel)
        elif ratio == 128:
            ck = hca_pool(x, g(a + "compressor.wkv.weight"), g(a + "compressor.wgate.weight"), g(a + "compressor.ape"),
                          g(a + "compressor.norm.weight"), d, 128, comp_rope, eps)
            vis = ((pos + 1) // 128)[:, None] > np.arange(ck.shape[0])[None, :]
            keys.append(ck)
            allow.append(vis)
        Kall = np.concatenate(keys)  # [S, d]
        Aall = np.concatenate(allow, axis=1)  # [T, S]
        sinks = g(a + "attn_sink")
        logits = np.einsum("thd,sd->hts", q, Kall) * d**-0.5
        logits = np.where(Aall[None], logits, -np.inf)
        M = logits.max(-1, keepdims=True)
        ex = np.exp(logits - M)
        Z = ex.sum(-1, keepdims=True) + np.exp(sinks[:, None, None] - M)
        o = np.einsum("hts,sd->thd", ex / Z, Kall)
        o = rope.apply(o, pos[:, None], inverse=True)
        og = o.reshape(T, G, H * d // G)
        woa = g(a + "wo_a.weight").reshape(G, -1, H * d // G)
        u = np.einsum("tgi,goi->tgo", og, woa).reshape(T, -1)
        y = u @ g(a + "wo_b.weight").T
        X = post[..., None] * y[:, None, :] + np.einsum("tjk,tjd->tkd", C, X)
        # ---- FFN site
        pre, post, C = mhc_coeffs(X, g(p + "hc_ffn_fn"), g(p + "hc_ffn_base"), g(p + "hc_ffn_scale"), cfg)
        x = rms((pre[..., None] * X).sum(1), eps, g(p + "ffn_norm.weight"))
        f = p + "ffn."
        s = np.sqrt(np.log1p(np.exp(x @ g(f + "gate.weight").T)))
        if li < n_hash:
            idx = W[f + "gate.tid2eid"][tokens]
        else:
            idx = np.argsort(-(s + g(f + "gate.bias")), axis=-1, kind="stable")[:, :K]
        wts = np.take_along_axis(s, idx, axis=-1)
        wts = wts / (wts.sum(-1, keepdims=True) + 1e-20) * rsf

        def swiglu(xx, w1, w3, w2):
            gg = np.minimum(xx @ w1.T, lim)
            uu = np.clip(xx @ w3.T, -lim, lim)
            return (gg / (1 + np.exp(-gg)) * uu) @ w2.T

        out = swiglu(x, g(f + "shared_experts.w1.weight"), g(f + "shared_experts.w3.weight"),
                     g(f + "shared_experts.w2.weight"))
        for e in range(E):
            rows, slot = np.nonzero(idx == e)
            if rows.size == 0:
                continue
            ye = swiglu(x[rows], g(f + f"experts.{e}.w1.weight"), g(f + f"experts.{e}.w3.weight"),
                        g(f + f"experts.{e}.w2.weight"))
            out[rows] += ye * wts[rows, slot][:, None]
        X = post[..., None] * out[:, None, :] + np.einsum("tjk,tjd->tkd", C, X)

    xh = rms(X.reshape(T, -1), eps)
    mu = xh @ g("hc_head_fn").T
    pre = sigmoid(mu * g("hc_head_scale")[0] + g("hc_head_base")) + cfg["hc_eps"]
    h = rms((pre[..., None] * X).sum(1), eps, g("norm.weight"))
    return h @ g("head.weight").T


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--tolerance", type=float, default=1e-3)
    args = ap.parse_args()
    with open(os.path.join(args.model, "config.json")) as fh:
        cfg = json.load(fh)
    qc = cfg.get("quantization_config") or {}
    blk = tuple(qc["weight_block_size"]) if "weight_block_size" in qc else None
    native, _ = nc.dequantize_all(nc.read_checkpoint(args.model), blk)
    W = {k: (v.astype(np.float64) if v.dtype != np.int64 else v) for k, v in native.items()}
    with open(os.path.join(args.fixtures, "MANIFEST.json")) as fh:
        man = json.load(fh)
    worst = 0.0
    for rec in man["sequences"]:
        tokens = np.load(os.path.join(args.fixtures, rec["tokens"])).astype(np.int64)
        ref = np.load(os.path.join(args.fixtures, rec["logits"])).astype(np.float64)
        got = forward(W, cfg, tokens)
        diff = np.abs(got - ref)
        worst = max(worst, float(diff.max()))
        print(f"seq {rec['index']}: T={len(tokens)} max|diff|={diff.max():.3e} mean|diff|={diff.mean():.3e} "
              f"worst position {int(diff.max(1).argmax())}; logit std {ref.std():.3f}")
    ok = worst <= args.tolerance
    print("OK" if ok else "MISMATCH", f"(tolerance {args.tolerance})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
