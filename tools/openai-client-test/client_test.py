#!/usr/bin/env python3
"""Drive a running EdgeSeek server with the official OpenAI Python client.

Usage: python client_test.py --base-url http://127.0.0.1:8080/v1 [--api-key KEY] [--model NAME]

Exits 0 when every check passes; prints one line per check.
"""
import argparse
import sys

import openai


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--api-key", default="none")
    ap.add_argument("--model", default=None, help="model id (default: the first one /v1/models lists)")
    args = ap.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=60)
    failures = []

    def check(name, ok, detail=""):
        print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail and not ok else ""))
        if not ok:
            failures.append(name)

    models = client.models.list()
    ids = [m.id for m in models.data]
    check("models.list", len(ids) >= 1, repr(ids))
    model = args.model or ids[0]

    msgs = [{"role": "user", "content": "Say hello."}]
    # Non-streaming chat with seed, logprobs and usage.
    a = client.chat.completions.create(model=model, messages=msgs, max_tokens=16, seed=7, temperature=0.8,
                                       top_p=0.95, logprobs=True, top_logprobs=2)
    ch = a.choices[0]
    check("chat: finish_reason", ch.finish_reason in ("stop", "length"), ch.finish_reason)
    check("chat: usage", a.usage is not None and a.usage.completion_tokens >= 1
          and a.usage.total_tokens == a.usage.prompt_tokens + a.usage.completion_tokens, repr(a.usage))
    lp = ch.logprobs.content if ch.logprobs else []
    check("chat: logprobs per token", len(lp) == a.usage.completion_tokens, f"{len(lp)} vs {a.usage.completion_tokens}")
    check("chat: top_logprobs", all(len(t.top_logprobs) == 2 for t in lp))

    # Same seed again: same text.
    b = client.chat.completions.create(model=model, messages=msgs, max_tokens=16, seed=7, temperature=0.8, top_p=0.95)
    check("chat: seeded repeat", b.choices[0].message.content == ch.message.content)

    # Streaming gives the same text as non-streaming, and usage at the end.
    stream = client.chat.completions.create(model=model, messages=msgs, max_tokens=16, seed=7, temperature=0.8,
                                            top_p=0.95, stream=True, stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta and c.delta.content:
                text += c.delta.content
            if c.finish_reason:
                finish = c.finish_reason
    check("chat stream: same text", text == ch.message.content, f"{text!r} vs {ch.message.content!r}")
    check("chat stream: finish", finish == ch.finish_reason, repr(finish))
    check("chat stream: usage", usage is not None and usage.completion_tokens == a.usage.completion_tokens, repr(usage))

    # Legacy completions, streaming and not.
    c1 = client.completions.create(model=model, prompt="Once upon a time", max_tokens=12, seed=3, logprobs=2)
    check("completions: text", isinstance(c1.choices[0].text, str) and c1.usage.completion_tokens >= 1)
    check("completions: logprobs", c1.choices[0].logprobs is not None
          and len(c1.choices[0].logprobs.tokens) == c1.usage.completion_tokens)
    s = "".join(c.choices[0].text for c in client.completions.create(model=model, prompt="Once upon a time",
                                                                        max_tokens=12, seed=3, stream=True) if c.choices)
    check("completions stream: same text", s == c1.choices[0].text, f"{s!r} vs {c1.choices[0].text!r}")

    # Errors come back as API errors with a message.
    try:
        client.chat.completions.create(model=model, messages=msgs, max_tokens=10_000_000)
        check("error: context limit", False, "no error")
    except openai.BadRequestError as e:
        check("error: context limit", "context limit" in str(e), str(e))
    try:
        client.chat.completions.create(model="no-such-model", messages=msgs)
        check("error: unknown model", False, "no error")
    except openai.NotFoundError:
        check("error: unknown model", True)

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
