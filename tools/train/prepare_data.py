"""Build the Go-source corpus, train the byte-level BPE tokenizer and tokenize.

Corpus: every `.go` file under $(go env GOROOT)/src, except
  * anything under a `testdata/` or `vendor/` directory (test inputs; vendored third-party copies),
  * files larger than --max-file-bytes (the huge generated tables: opGen.go, rewrite*.go, ...),
  * files marked "Code generated ... DO NOT EDIT." that are larger than --max-generated-bytes.
Held out (never trained on, never seen by the tokenizer trainer): whole packages given by
--holdout (default net/http and encoding/json, each with all subpackages).

Writes into --work:
  files_train.txt / files_eval.txt   relative paths (sorted) of the files in each split
  train.u16 / eval.u16               token ids, one document per file: BOS + tokens(file) + EOS
  eval_docs.json                     per-file [offset, n_tokens, n_bytes] into eval.u16
  eval_bytes.go.txt                  the concatenated held-out bytes (for the xz baseline)
  corpus.json                        counts, Go version, settings
and the tokenizer to --tokenizer-out (tokenizer.json). With --tokenizer-in the tokenizer is not
trained but read from that file (e.g. the committed models/demo/tokenizer.json, to rebuild the
token arrays of an existing model on a fresh machine); it must have the specials at ids 0-6.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

SPECIALS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
            "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"]
BOS, EOS = 0, 1

# DeepSeek-V3/V4 pre-tokenizer (shared/spec/mhc-moe-engram-encoding.md §6.1); written as the
# tokenizer.json fragment so that it is byte-identical to the released tokenizer's.
PRETOKENIZER_JSON = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[一-龥぀-ゟ゠-ヿ]+"}, "behavior": "Isolated", "invert": False},
        {"type": "Split", "pattern": {"Regex":
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
            " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ],
}


def goroot() -> str:
    return subprocess.check_output(["go", "env", "GOROOT"], text=True).strip()


def go_version(root: str) -> str:
    p = os.path.join(root, "VERSION")
    if os.path.exists(p):
        return open(p).readline().strip()
    return subprocess.check_output(["go", "version"], text=True).strip()


def is_generated(head: bytes) -> bool:
    for line in head.split(b"\n")[:40]:
        if line.startswith(b"// Code generated") and line.rstrip().endswith(b"DO NOT EDIT."):
            return True
    return False


def collect(src: str, holdout: list[str], max_file: int, max_gen: int):
    train, evalf, skipped = [], [], {"testdata_or_vendor": 0, "too_large": 0, "generated_large": 0, "not_utf8": 0}
    for dirpath, dirnames, filenames in os.walk(src):
        parts = os.path.relpath(dirpath, src).split(os.sep)
        if "testdata" in parts or "vendor" in parts:
            skipped["testdata_or_vendor"] += sum(1 for _, _, fs in os.walk(dirpath) for f in fs if f.endswith(".go"))
            dirnames[:] = []
            continue
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith(".go"):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            size = os.path.getsize(path)
            if size > max_file:
                skipped["too_large"] += 1
                continue
            with open(path, "rb") as f:
                data = f.read()
            if size > max_gen and is_generated(data[:4096]):
                skipped["generated_large"] += 1
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                skipped["not_utf8"] += 1
                continue
            pkg = os.path.dirname(rel)
            held = any(pkg == h or pkg.startswith(h + "/") for h in holdout)
            (evalf if held else train).append(rel)
    return sorted(train), sorted(evalf), skipped


def train_tokenizer(texts_iter, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    # Build the pre-tokenizer from its JSON form (exact patterns of the released tokenizer).
    tmp = json.loads(tok.to_str())
    tmp["pre_tokenizer"] = PRETOKENIZER_JSON
    tmp["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    tok = Tokenizer.from_str(json.dumps(tmp))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts_iter, trainer=trainer)
    return tok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--goroot", default=None, help="default: $(go env GOROOT)")
    ap.add_argument("--work", required=True, help="output directory for corpus and token arrays")
    ap.add_argument("--tokenizer-out", required=True, help="path of tokenizer.json to write")
    ap.add_argument("--tokenizer-in", default=None,
                    help="use this tokenizer.json instead of training one (it is copied to --tokenizer-out)")
    ap.add_argument("--holdout", default="net/http,encoding/json")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--max-file-bytes", type=int, default=200_000)
    ap.add_argument("--max-generated-bytes", type=int, default=50_000)
    args = ap.parse_args(argv)

    root = args.goroot or goroot()
    src = os.path.join(root, "src")
    holdout = [h.strip().strip("/") for h in args.holdout.split(",") if h.strip()]
    os.makedirs(args.work, exist_ok=True)
    train, evalf, skipped = collect(src, holdout, args.max_file_bytes, args.max_generated_bytes)
    print(f"train files {len(train)}, eval files {len(evalf)}, skipped {skipped}", file=sys.stderr)

    def read(rel):
        with open(os.path.join(src, rel), "rb") as f:
            return f.read().decode("utf-8")

    if args.tokenizer_in:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(args.tokenizer_in)
    else:
        tok = train_tokenizer((read(r) for r in train), args.vocab_size)
    for i, s in enumerate(SPECIALS):
        if tok.token_to_id(s) != i:
            raise SystemExit(f"tokenizer: special {s!r} has id {tok.token_to_id(s)}, want {i}")
    os.makedirs(os.path.dirname(os.path.abspath(args.tokenizer_out)), exist_ok=True)
    if not args.tokenizer_in:
        tok.save(args.tokenizer_out, pretty=False)
    elif os.path.abspath(args.tokenizer_in) != os.path.abspath(args.tokenizer_out):
        shutil.copyfile(args.tokenizer_in, args.tokenizer_out)  # byte for byte
    print(f"tokenizer: {tok.get_vocab_size()} entries -> {args.tokenizer_out}", file=sys.stderr)

    stats = {}
    for split, files in (("train", train), ("eval", evalf)):
        ids_all, docs, nbytes = [], [], 0
        off = 0
        cat = []
        for rel in files:
            text = read(rel)
            ids = tok.encode(text, add_special_tokens=False).ids
            assert tok.decode(ids, skip_special_tokens=False) == text, f"round trip failed: {rel}"
            doc = [BOS] + ids + [EOS]
            b = len(text.encode("utf-8"))
            docs.append([rel, off, len(doc), b])
            off += len(doc)
            ids_all.append(np.asarray(doc, dtype=np.uint16))
            nbytes += b
            if split == "eval":
                cat.append(text.encode("utf-8"))
        arr = np.concatenate(ids_all)
        arr.tofile(os.path.join(args.work, f"{split}.u16"))
        with open(os.path.join(args.work, f"files_{split}.txt"), "w") as f:
            f.write("\n".join(files) + "\n")
        if split == "eval":
            with open(os.path.join(args.work, "eval_docs.json"), "w") as f:
                json.dump(docs, f)
            with open(os.path.join(args.work, "eval_bytes.go.txt"), "wb") as f:
                f.write(b"".join(cat))
        stats[split] = {"files": len(files), "bytes": nbytes, "tokens_with_bos_eos": int(arr.size),
                        "content_tokens": int(arr.size - 2 * len(files))}
        print(f"{split}: {stats[split]}", file=sys.stderr)
    info = {"go_version": go_version(root), "goroot_src": src, "holdout_packages": holdout,
            "filters": {"skip_dirs": ["testdata", "vendor"], "max_file_bytes": args.max_file_bytes,
                        "max_generated_bytes": args.max_generated_bytes},
            "skipped": skipped, "splits": stats, "vocab_size": tok.get_vocab_size()}
    with open(os.path.join(args.work, "corpus.json"), "w") as f:
        json.dump(info, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
