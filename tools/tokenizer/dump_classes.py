#!/usr/bin/env python3
"""Dumps the code points that the Oniguruma regex engine inside Hugging Face tokenizers puts in
\\p{L}, \\p{M}, \\p{N}, \\p{P}, \\p{S} and \\s, as ranges, to testdata/tokenizer/onig_classes.json.
The Go test TestClassesMatchOniguruma compares its own classes with this file for every code point.
It asks the engine itself: a Split pre-tokenizer with behavior "removed" deletes the members."""
import json
import os

from tokenizers import Regex, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(map(chr, cps))
    out = {}
    for name, pat in [("L", r"\p{L}"), ("M", r"\p{M}"), ("N", r"\p{N}"), ("P", r"\p{P}"), ("S", r"\p{S}"), ("s", r"\s")]:
        split = pre_tokenizers.Split(Regex(pat), behavior="removed")
        rest = set("".join(p for p, _ in split.pre_tokenize_str(text)))
        ranges = []
        for c in cps:
            if chr(c) in rest:
                continue
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
        out[name] = ranges
    with open(os.path.join(ROOT, "testdata", "tokenizer", "onig_classes.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
