"""Summarise a train.py log.jsonl into MODEL/eval.json["training"] (loss curve at ~10 points).

usage: summarize_log.py LOG MODEL_DIR [RESUMES_JSON]
RESUMES_JSON lists resumes of runs made before train.py logged them:
'[{"step": 2875, "elapsed": 3600, "args": {"lr": 0.001, "time_limit": 9900, "threads": 2}}]'.
"""
import json
import os
import sys

log, model_dir = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(log)]
start = next(r for r in rows if r.get("event") == "start")
# A run resumed with a longer --time-limit ends more than once: the last end counts.
end = next((r for r in reversed(rows) if r.get("event") == "end"), None)
resumes = [r for r in rows if r.get("event") == "resume"]
if len(sys.argv) > 3:  # resumes of runs made before train.py logged them, as JSON
    resumes = json.loads(sys.argv[3]) + resumes
# A run killed between checkpoints logged steps that its resume trained again from the last
# checkpoint (older runs did not log their resumes, so a step going backwards is the sign): drop
# the superseded rows, so every step is counted once and the curve is the one the checkpoint saw.
def order(r):  # a step's training row is logged before its held-out probe
    return (r["step"], 0 if "ema" in r else 1)


kept = []  # step rows (training and held-out probe), in order
for r in rows:
    if "step" in r and "event" not in r:
        while kept and order(kept[-1]) >= order(r):
            kept.pop()
        kept.append(r)
steps = [r for r in kept if "ema" in r]
held = [r for r in kept if "heldout_loss" in r]
n = len(steps)
pick = sorted({0, n - 1} | {int(i * (n - 1) / 10) for i in range(11)})
a = start["args"]
summary = {
    "params": start["params"], "args": {k: a[k] for k in ("batch", "seq_len", "lr", "min_lr_frac", "warmup", "wd", "clip",
                                                       "bias_rate", "time_limit", "threads", "device", "seed")},
    "steps": end["step"] if end else steps[-1]["step"],
    "train_seconds": end["elapsed"] if end else steps[-1]["elapsed"],
    "tokens_seen": end["tokens_seen"] if end else steps[-1]["step"] * a["batch"] * a["seq_len"],
    "loss_curve": [{"step": steps[i]["step"], "elapsed_s": steps[i]["elapsed"], "loss_ema": steps[i]["ema"],
                    "max_over_mean_expert_load": steps[i]["max_over_mean_load"],
                    **({"indexer_kl": steps[i]["indexer_kl"]} if "indexer_kl" in steps[i] else {})} for i in pick],
    "heldout_probe_loss": [{"step": r["step"], "loss": r["heldout_loss"]} for r in held]
                          + ([{"step": end["step"], "loss": end["heldout_loss"]}] if end else []),
    "heldout_probe": "4 fixed windows of 256 tokens from the held-out stream (monitoring only; noisy)",
    "resumes": [{"step": r["step"], "elapsed": r["elapsed"], **({"init_from": r["init_from"]} if "init_from" in r else {}),
                 "args": {k: r["args"][k] for k in ("lr", "min_lr_frac", "time_limit", "threads", "indexer_loss", "compile", "quant_aware")
                          if k in r["args"]}} for r in resumes],
}
path = os.path.join(model_dir, "eval.json")
prev = json.load(open(path)) if os.path.exists(path) else {}
prev["training"] = summary
with open(path, "w") as f:
    json.dump(prev, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(json.dumps(summary, indent=1))
