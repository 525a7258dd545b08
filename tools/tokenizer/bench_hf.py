#!/usr/bin/env python3
"""Measures Hugging Face tokenizers' single-threaded encode speed on the parity corpus, the
figure BenchmarkEncode is compared with: every corpus file encoded whole with
encode(text, add_special_tokens=False), best of several rounds. Run with
TOKENIZERS_PARALLELISM=false (set below as well)."""
import os
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TD = os.path.join(ROOT, "testdata", "tokenizer")


def main():
    corpus = os.path.join(TD, "corpus")
    texts = []
    for f in sorted(os.listdir(corpus)):
        with open(os.path.join(corpus, f), encoding="utf-8", newline="") as fh:
            texts.append(fh.read())
    total = sum(len(t.encode("utf-8")) for t in texts)
    for name, path in [("deepseek_v3", os.path.join(ROOT, "build", "tokenizer", "deepseek_v3.json")),
                       ("tiny", os.path.join(TD, "tiny.json"))]:
        tok = Tokenizer.from_file(path)
        best, best_cpu = float("inf"), float("inf")
        for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
            t0, c0 = time.perf_counter(), time.process_time()
            for t in texts:
                tok.encode(t, add_special_tokens=False)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        # CPU time is the fairer figure on a shared machine.
        print("%s: %.2f MB/s wall, %.2f MB/s per CPU-second (%d bytes)" % (name, total / best / 1e6, total / best_cpu / 1e6, total))


if __name__ == "__main__":
    main()
