"""One process of benchmarks/ab_checkouts.sh: CPU-time tokens/s of top-k and cached PARGS (eager loop).

Usage: python benchmarks/ab_one.py CHECKOUT N_NEW_TOKENS REPEATS (the checkout's pargs and benchmarks are used).
"""

import hashlib
import json
import sys
import time

root, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, root)
import torch  # noqa: E402

torch.set_num_threads(1)
from benchmarks.decoding import PARGS, SEEDS, TOP_K, build  # noqa: E402
from pargs.decoding.cached_scorer import CachedCausalScorer  # noqa: E402
from pargs.decoding.engine import generate  # noqa: E402

tokenizer, policy, rm, prompts = build()


def run(method, scorer):
    g = generate(policy, tokenizer, prompts, method, SEEDS, scorer=scorer, max_new_tokens=n, min_new_tokens=n)
    return sum(g.num_tokens), g.token_ids


out = {}
for name, method, scorer in (("top-k", TOP_K, lambda: None), ("pargs-cached", PARGS, lambda: CachedCausalScorer(rm))):
    _, ids = run(method, scorer())  # warm-up; its tokens are compared between checkouts
    speeds = []
    for _ in range(repeats):
        t = time.process_time()
        tokens, _ = run(method, scorer())
        speeds.append(tokens / (time.process_time() - t))
    out[name] = {
        "tok_per_cpu_s": sorted(speeds)[len(speeds) // 2],
        "ids": hashlib.sha1(str(ids).encode()).hexdigest()[:12],
    }
print(json.dumps(out))
