"""Train the demo DeepSeek-V4-architecture model on the Go corpus (transformers, float32).

Resumable: a checkpoint (model, optimizer, step, elapsed seconds, RNG) is written atomically to
--out/ckpt.pt every --save-every seconds and at the end. Rerunning the same command resumes.
The learning-rate schedule is a function of *elapsed training time* over --time-limit (cosine
to --min-lr-frac, scaled by a linear warm-up over the first --warmup steps of a fresh optimizer), so a
resumed run follows the same schedule.
SIGTERM or SIGINT stops the run early but cleanly: the current step finishes, then the checkpoint
and the log's "end" event are written as at the time limit (so no logged step is lost to a resume).

--init-from MODEL_DIR continues an exported model when its checkpoint is gone (a fresh machine):
the weights are the dequantised export (FP8 trunk and FP4 experts as stored, the rest BF16), the
optimizer starts afresh (so the learning rate warms up again over --warmup steps), and the step,
elapsed time and log continue from MODEL_DIR/training_log.jsonl, so that --time-limit and the
summary still count the whole history.

--quant-aware trains on the weights as the export stores them (quant_aware.py: straight-through
fake quantisation to FP4/FP8/BF16 around each forward and backward; the optimizer updates float32
masters), so the exported model is the trained one rather than a rounding of it. It may be
switched on when resuming.

Score-routed MoE layers use DeepSeek's auxiliary-loss-free balancing: after every step each
expert's `e_score_correction_bias` moves by --bias-rate towards balance (sign of mean load − load).
Hash-routed layers use a fixed seeded `tid2eid` (distinct random experts per token id).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import indexer_loss  # noqa: E402


def log(fh, **kv):
    kv["wall"] = round(time.time(), 1)
    line = json.dumps(kv)
    print(line, flush=True)
    fh.write(line + "\n")
    fh.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="directory made by prepare_data.py")
    ap.add_argument("--out", required=True, help="run directory (config.json, ckpt.pt, log.jsonl)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:0 ...")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=75 * 60, help="training seconds (whole run, across resumes)")
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--bias-rate", type=float, default=1e-3)
    ap.add_argument("--save-every", type=float, default=240.0, help="seconds")
    ap.add_argument("--eval-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--eval-windows", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=160)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--moe-width", type=int, default=96)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--hash-layers", type=int, default=2)
    ap.add_argument("--bench", type=int, default=0, help="run N steps, print timing, save nothing")
    ap.add_argument("--indexer-loss", type=float, default=1.0,
                    help="weight of the lightning indexer's distillation loss (indexer_loss.py); 0 = untrained indexer")
    ap.add_argument("--compile", default="",
                    help="comma-separated transformers module classes to torch.compile in place, e.g. "
                         "DeepseekV4HyperConnection,DeepseekV4HyperHead,DeepseekV4Attention (1.3x on CPU: "
                         "mHC's Sinkhorn loop is hundreds of tiny element-wise ops); empty = eager")
    ap.add_argument("--init-from", default=None,
                    help="exported model directory to continue when --out has no checkpoint (see above)")
    ap.add_argument("--quant-aware", action="store_true",
                    help="forward and backward on the weights as export.py stores them (FP4 experts, FP8 "
                         "projections, BF16 rest), updating float32 masters (quant_aware.py)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    cfg_path = os.path.join(args.out, "config.json")

    vocab = json.load(open(os.path.join(args.work, "corpus.json")))["vocab_size"]
    resuming = os.path.exists(ckpt_path) and not args.bench
    init_from = args.init_from if not resuming else None
    if resuming:
        cfg = json.load(open(cfg_path))
    elif init_from:
        cfg = common.clean_config(json.load(open(os.path.join(init_from, "config.json"))))
        if cfg["vocab_size"] != vocab:
            raise SystemExit(f"--init-from {init_from}: vocab_size {cfg['vocab_size']}, corpus has {vocab}")
    else:
        cfg = common.model_config_dict(hidden=args.hidden, layers=args.layers, vocab=vocab,
                                       moe_width=args.moe_width, experts=args.experts, hash_layers=args.hash_layers)
    torch.manual_seed(args.seed)
    config, model = common.build_model(cfg)
    common.init_tid2eid(model, cfg["vocab_size"], cfg["n_routed_experts"], cfg["num_experts_per_tok"], args.seed)
    if init_from:
        import export  # noqa: E402  (needs tools/reference; only this path uses it)
        _, exported, _ = export.load_dequantized(init_from)
        model.load_state_dict(exported.state_dict(), strict=True)
        del exported
    model.to(dev).train()
    distill = indexer_loss.IndexerDistillation(model) if args.indexer_loss > 0 else None
    # Compiling whole modules in place keeps parameter names, so checkpoints stay interchangeable
    # with eager runs. The experts are left eager: their token counts change every step.
    compiled = {c for c in args.compile.split(",") if c}
    for m in model.modules():
        if type(m).__name__ in compiled:
            m.compile(dynamic=False)
    n_params = sum(p.numel() for p in model.parameters())
    qa = None
    if args.quant_aware:
        import quant_aware  # noqa: E402
        qa = quant_aware.QuantAware(model, cfg["quantization_config"]["weight_block_size"][0])
    indexer_params = [p for n, p in model.named_parameters() if ".compressor.indexer." in n] if distill else []
    lm_params = [p for n, p in model.named_parameters() if not (distill and ".compressor.indexer." in n)]

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embed" not in n and "hc" not in n.split(".")[-2:][0] else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    train = np.fromfile(os.path.join(args.work, "train.u16"), dtype=np.uint16)
    evald = np.fromfile(os.path.join(args.work, "eval.u16"), dtype=np.uint16)
    L = args.seq_len
    ev_rng = np.random.default_rng(12345)
    ev_starts = ev_rng.integers(0, evald.size - L - 1, size=args.eval_windows)
    ev_batch = torch.from_numpy(np.stack([evald[s:s + L + 1] for s in ev_starts]).astype(np.int64)).to(dev)

    step, elapsed, rng_state = 0, 0.0, None
    warm_from = 0  # the step the learning-rate warm-up counts from (a fresh optimizer's first step)
    log_path = os.path.join(args.out, "log.jsonl")
    if resuming:
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"], strict=True)
        opt.load_state_dict(ck["opt"])
        step, elapsed, rng_state = ck["step"], ck["elapsed"], ck["np_rng"]
        warm_from = ck.get("warm_from", 0)
        print(f"resumed at step {step}, {elapsed:.0f}s", file=sys.stderr)
    elif not args.bench:
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        if init_from:
            hist = os.path.join(init_from, "training_log.jsonl")
            rows = [json.loads(l) for l in open(hist)]
            end = next((r for r in reversed(rows) if r.get("event") == "end"), None)
            if end is None:
                raise SystemExit(f"--init-from: {hist} has no end event")
            step, elapsed, warm_from = end["step"], end["elapsed"], end["step"]
            with open(log_path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
            print(f"initialised from {init_from} at step {step}, {elapsed:.0f}s", file=sys.stderr)
    # A continued run draws a batch stream of its own rather than replaying the first run's.
    rng = np.random.default_rng([args.seed, warm_from] if warm_from else args.seed)
    if rng_state is not None:
        rng.bit_generator.state = rng_state
    fh = open(log_path, "a")
    if step == 0 and not args.bench:
        log(fh, event="start", params=n_params, config=cfg, args=vars(args))
    elif not args.bench:
        # A resumed run may change the schedule (--lr, --time-limit, --threads): record it.
        log(fh, event="resume", step=step, elapsed=round(elapsed, 1),
            **({"init_from": init_from} if init_from else {}), args=vars(args))

    # expert-load capture for the score-routed layers
    loads = {}
    score_layers = [i for i, l in enumerate(model.model.layers) if not l.mlp.is_hash]

    def mk_hook(li):
        def hook(mod, inp, out):
            loads[li] = torch.bincount(out[2].reshape(-1), minlength=mod.num_experts).float()
        return hook
    for li in score_layers:
        model.model.layers[li].mlp.gate.register_forward_hook(mk_hook(li))

    def lr_at(step, elapsed):
        frac = min(1.0, elapsed / args.time_limit)
        lr = args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))
        if step - warm_from < args.warmup:  # towards the schedule's value (a continued run is mid-cosine)
            return lr * (step - warm_from + 1) / args.warmup
        return lr

    def evaluate():
        model.eval()
        if qa:
            qa.quantise()
        with torch.no_grad():
            tot = 0.0
            for i in range(ev_batch.shape[0]):
                x = ev_batch[i:i + 1]
                out = model(input_ids=x[:, :-1], use_cache=False)
                tot += torch.nn.functional.cross_entropy(out.logits[0], x[0, 1:]).item()
        if qa:
            qa.restore()
        model.train()
        return tot / ev_batch.shape[0]

    def save():
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                    "np_rng": rng.bit_generator.state, "config": cfg, "warm_from": warm_from}, tmp)
        os.replace(tmp, ckpt_path)

    last_save = last_eval = time.time()
    seg_start = time.time()
    base_elapsed = elapsed
    tok_count = 0
    ema = None
    t_bench = time.time()
    stop = []  # set by SIGTERM/SIGINT: leave the loop after the current step, saving as at the limit

    def request_stop(signum, _frame):
        stop.append(signum)
        print(f"signal {signum}: stopping after this step", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while elapsed < args.time_limit and step < args.max_steps and not stop:
        t0 = time.time()
        starts = rng.integers(0, train.size - L - 1, size=args.batch)
        xb = torch.from_numpy(np.stack([train[s:s + L + 1] for s in starts]).astype(np.int64)).to(dev)
        lr = lr_at(step, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        if qa:
            qa.quantise()
        out = model(input_ids=xb[:, :-1], use_cache=False)
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), xb[:, 1:].reshape(-1))
        total = loss
        if distill is not None:
            kl = distill.loss()
            if kl is not None:  # touches only the indexer's weights (its inputs are detached)
                total = loss + args.indexer_loss * kl
        opt.zero_grad(set_to_none=True)
        total.backward()
        if qa:  # straight-through: the gradient at the quantised weights updates the masters
            qa.restore()
        # The indexer is clipped on its own so that its loss never rescales the LM's update.
        gn = torch.nn.utils.clip_grad_norm_(lm_params, args.clip).item()
        if indexer_params:
            torch.nn.utils.clip_grad_norm_(indexer_params, args.clip)
        opt.step()
        imb = {}
        with torch.no_grad():
            for li in score_layers:
                c = loads[li]
                b = model.model.layers[li].mlp.gate.e_score_correction_bias
                b += args.bias_rate * torch.sign(c.mean() - c)
                imb[li] = round((c.max() / c.mean()).item(), 2)
        step += 1
        tok_count += xb.shape[0] * L
        elapsed = base_elapsed + (time.time() - seg_start)
        lv = loss.item()
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        if args.bench:
            print(f"step {step} loss {lv:.3f} indexer KL {distill.last if distill else '-'} {time.time() - t0:.2f}s",
                  flush=True)
            if step >= args.bench:
                dt = time.time() - t_bench
                print(f"bench: {args.bench} steps {dt:.1f}s, {tok_count / dt:.0f} tok/s, params {n_params}")
                return 0
            continue
        if step % 10 == 0 or step <= 3:
            log(fh, step=step, loss=round(lv, 4), ema=round(ema, 4), lr=round(lr, 6), gnorm=round(gn, 3),
                elapsed=round(elapsed, 1), tok_s=round(tok_count / (time.time() - seg_start), 1),
                step_s=round(time.time() - t0, 2), max_over_mean_load=imb,
                **({"indexer_kl": distill.last} if distill else {}))
        if time.time() - last_eval > args.eval_every:
            log(fh, step=step, elapsed=round(elapsed, 1), heldout_loss=round(evaluate(), 4))
            last_eval = time.time()
        if time.time() - last_save > args.save_every:
            save()
            last_save = time.time()
    if not args.bench:
        save()
        log(fh, event="end", step=step, elapsed=round(elapsed, 1), heldout_loss=round(evaluate(), 4),
            tokens_seen=int(step * args.batch * L), **({"stopped_by_signal": stop[0]} if stop else {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
