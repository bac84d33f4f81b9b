"""The geo-r1 `small` VLM in PyTorch, for the peer benchmark (bench/peer/peer.ts runs it next to ours).

Same architecture and parameter count as lib/model/vlm.ts at the small preset with the geo-r1 model flags
(cue heads, cue-conditioned text, cue match, slot segments): 1,319,248 parameters. Times, on random inputs
of the real shapes (compute does not depend on values):
  - rollouts: P prompts x G samples, the image + prompt prefix encoded once per prompt, a preallocated KV
    cache, sampling at temperature 0.7, `--new-tokens` tokens per row (no stop id);
  - one GRPO training step on `--train-rows` rows (P x G): forward with the vision encoder per row, DAPO
    token-level clipped surrogate, entropy of the detached log-probs, backward, grad-norm clip, AdamW.
Prints one JSON line: medians (ms) over --reps after one warm-up, per thread count.

  python3 bench/peer/grpo_peer.py [--threads 1,2] [--reps 3]

Without PyTorch it prints {"skipped": "..."} and exits 0.
"""

import argparse
import json
import math
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print(json.dumps({"skipped": "PyTorch is not installed (Debian: apt-get install python3-torch)"}))
    sys.exit(0)

D, FF, H, LAYERS, VOCAB, MAX_TEXT = 128, 512, 4, 3, 1202, 384
GROUND_TOKENS, SECTORS, K, CUE = 16, 16, 4, 40
RADII, AZIMUTHS = 16, 64


def gelu(x):
    return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.proj = nn.Linear(d, ff), nn.Linear(ff, d)

    def attend(self, x, bias, past=None):
        """x [B, S, d]; past: (k, v) [B, H, S0, dh] prepended; returns (y, k, v)."""
        B, S, d = x.shape
        dh = d // H
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(B, S, H, dh).transpose(1, 2) for t in (q, k, v))
        kk, vv = (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)) if past is not None else (k, v)
        s = q @ kk.transpose(2, 3) / math.sqrt(dh)
        if bias is not None:
            s = s + bias
        y = (s.softmax(-1) @ vv).transpose(1, 2).reshape(B, S, d)
        x = x + self.out(y)
        return x + self.proj(gelu(self.fc(self.ln2(x)))), k, v


def polar_sampling(S, R, A):
    idx, w = [], []
    for r in range(R):
        rho = (r + 0.5) / R * (S / 2)
        for a in range(A):
            t = 2 * math.pi * a / A
            x, y = S / 2 + rho * math.sin(t) - 0.5, S / 2 - rho * math.cos(t) - 0.5
            x0, y0 = math.floor(x), math.floor(y)
            fx, fy = x - x0, y - y0
            for cx, cy, cw in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                               (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
                idx.append(min(S - 1, max(0, cy)) * S + min(S - 1, max(0, cx)))
                w.append(cw)
    return torch.tensor(idx), torch.tensor(w).view(1, R * A, 4, 1)


class VLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_ground, self.patch_aerial = nn.Linear(32 * 8 * 3, D), nn.Linear(RADII * 4 * 3, D)
        self.pos_ground = nn.Parameter(torch.randn(GROUND_TOKENS, D))
        self.view_type = nn.Parameter(torch.randn(1 + K, D))
        self.vis = Block(D, 4 * D)
        self.vis_ln = nn.LayerNorm(D)
        self.proj = nn.Linear(D, D)
        self.tok = nn.Parameter(torch.randn(VOCAB, D) * 0.02)
        self.pos = nn.Parameter(torch.randn(MAX_TEXT, D) * 0.02)
        self.blocks = nn.ModuleList(Block(D, FF) for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(D)
        self.slot = nn.Parameter(torch.randn(1 + K, D) * 0.02)
        self.cue_ground, self.cue_aerial = nn.Linear(GROUND_TOKENS * D, CUE), nn.Linear(SECTORS * D, CUE)
        self.cue_text_ground, self.cue_text_aerial = nn.Linear(CUE, D), nn.Linear(CUE, D)
        self.cue_match = nn.Linear(CUE, D)
        self.polar_idx, self.polar_w = polar_sampling(32, RADII, AZIMUTHS)

    def encode(self, ground, aerial):
        """ground [B, 32, 128, 3], aerial [B, K, 32, 32, 3] -> image tokens [B, 80, D], cue-text rows [B, 5, D]."""
        B = ground.shape[0]
        g = (ground * 2 - 1).view(B, 32, 16, 8, 3).permute(0, 2, 1, 3, 4).reshape(B, 16, -1)
        eg = self.patch_ground(g)
        a = (aerial * 2 - 1).reshape(B * K, 32 * 32, 3)[:, self.polar_idx].view(B * K, RADII * AZIMUTHS, 4, 3)
        a = (a * self.polar_w).sum(2).view(B * K, RADII, SECTORS, 4, 3).permute(0, 2, 1, 3, 4).reshape(
            B, K, SECTORS, -1)
        ea = self.patch_aerial(a)
        pos, vt = self.pos_ground, self.view_type
        eg = eg * (pos + 1) * (vt[0] + 1) + pos + vt[0]
        va = vt[1:].view(1, K, 1, D)
        ea = (ea * (pos + 1) * (va + 1) + pos + va).reshape(B, K * SECTORS, D)
        x, _, _ = self.vis.attend(torch.cat([eg, ea], 1), None)
        x = self.vis_ln(x)
        cg = self.cue_ground(x[:, :GROUND_TOKENS].reshape(B, -1))
        ca = self.cue_aerial(x[:, GROUND_TOKENS:].reshape(B * K, -1))
        pg, pa = cg.softmax(-1), ca.softmax(-1)
        rows = self.cue_text_aerial(pa).view(B, K, D) + self.cue_match(
            (pa.view(B, K, -1) * pg.view(B, 1, -1)).view(B * K, -1)).view(B, K, D)
        table = torch.cat([torch.zeros(B, 1, D), rows], 1) + self.cue_text_ground(pg).view(B, 1, D)
        return self.proj(x), table

    def text(self, ids, pos, seg, table):
        B = ids.shape[0]
        cue = table[torch.arange(B).view(B, 1), seg]
        return self.tok[ids] + self.pos[pos] + self.slot[seg] + cue


def mask_bias(Ni, T):
    S = Ni + T
    i = torch.arange(S).view(S, 1)
    j = torch.arange(S).view(1, S)
    ok = (j < Ni) | (j <= i)
    return torch.where(ok, 0.0, -1e9).view(1, 1, S, S)


def train_step(model, opt, B, Tp, Tc):
    ground, aerial = torch.rand(B, 32, 128, 3), torch.rand(B, K, 32, 32, 3)
    T = Tp + Tc
    ids = torch.randint(8, VOCAB, (B, T))
    pos = torch.arange(T).view(1, T).expand(B, T)
    seg = torch.randint(0, 1 + K, (B, T))
    adv = torch.randn(B, 1)
    mask = torch.zeros(B, T)
    mask[:, Tp:] = 1
    img, table = model.encode(ground, aerial)
    x = torch.cat([img, model.text(ids, pos, seg, table)], 1)
    bias = mask_bias(img.shape[1], T)
    for blk in model.blocks:
        x, _, _ = blk.attend(x, bias)
    h = model.ln_f(x[:, img.shape[1]:-1])
    lp = (h @ model.tok.t() / 0.7).log_softmax(-1)
    logp = lp.gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
    entropy = -(lp.detach().exp() * lp.detach()).sum(-1)
    m = mask[:, 1:]
    ratio = torch.exp(logp - logp.detach())
    loss = -torch.min(ratio * adv, ratio.clamp(1 - 0.2, 1 + 0.28) * adv)
    loss = (loss * m).sum() / m.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss) + float((entropy * m).sum())


@torch.no_grad()
def rollout(model, P, G, Tp, N):
    B = P * G
    ground, aerial = torch.rand(P, 32, 128, 3), torch.rand(P, K, 32, 32, 3)
    ids = torch.randint(8, VOCAB, (P, Tp))
    img, table = model.encode(ground, aerial)
    seg0 = torch.zeros(P, Tp, dtype=torch.long)
    x = torch.cat([img, model.text(ids, torch.arange(Tp).view(1, Tp).expand(P, Tp), seg0, table)], 1)
    bias = mask_bias(img.shape[1], Tp)
    S0 = x.shape[1]
    dh = D // H
    cache = []
    for blk in model.blocks:
        x, k, v = blk.attend(x, bias)
        ck, cv = torch.empty(B, H, S0 + N, dh), torch.empty(B, H, S0 + N, dh)
        ck[:, :, :S0] = k.repeat_interleave(G, 0)
        cv[:, :, :S0] = v.repeat_interleave(G, 0)
        cache.append((ck, cv))
    logits = (model.ln_f(x[:, -1]) @ model.tok.t()).repeat_interleave(G, 0)
    table = table.repeat_interleave(G, 0)
    seg = torch.zeros(B, 1, dtype=torch.long)
    for s in range(N):
        tok = torch.multinomial((logits / 0.7).softmax(-1), 1)
        x = model.text(tok, torch.full((B, 1), Tp + s), seg, table)
        t = S0 + s
        for blk, (ck, cv) in zip(model.blocks, cache):
            q, k, v = blk.qkv(blk.ln1(x)).split(D, dim=2)
            q, k, v = (u.view(B, 1, H, dh).transpose(1, 2) for u in (q, k, v))
            ck[:, :, t:t + 1], cv[:, :, t:t + 1] = k, v
            a = ((q @ ck[:, :, :t + 1].transpose(2, 3)) / math.sqrt(dh)).softmax(-1) @ cv[:, :, :t + 1]
            x = x + blk.out(a.transpose(1, 2).reshape(B, 1, D))
            x = x + blk.proj(gelu(blk.fc(blk.ln2(x))))
        logits = model.ln_f(x[:, 0]) @ model.tok.t()
    return B * N


def timed(fn, reps):
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=24)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--train-rows", type=int, default=32)
    ap.add_argument("--completion-tokens", type=int, default=136)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = VLM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, betas=(0.9, 0.99))
    res = {
        "torch": torch.__version__,
        "blas": torch.__config__.show().split("BLAS_INFO=")[-1].split(",")[0]
        if "BLAS_INFO=" in torch.__config__.show() else "unknown",
        "params": sum(p.numel() for p in model.parameters()),
        "runs": [],
    }
    for th in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(th)
        run = {"threads": th}
        for rows in (8, 64):
            ms = timed(lambda: rollout(model, rows // 8, 8, a.prompt_tokens, a.new_tokens), a.reps)
            run[f"rollout{rows}Ms"] = round(ms, 1)
            run[f"rollout{rows}TokPerSec"] = round(rows * a.new_tokens / (ms / 1000))
        run["trainStepMs"] = round(
            timed(lambda: train_step(model, opt, a.train_rows, a.prompt_tokens, a.completion_tokens), a.reps), 1)
        res["runs"].append(run)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
