# PyTorch eager reference for bench_step: mmpretrain's ArcFaceClsHead
# (margin_head.py) forward and backward in f32, written out as the upstream
# code computes it: NormProduct (F.normalize on X and W, F.linear, max over
# sub-centres), cos(acos(c) + m) over the whole N×C matrix, the threshold
# fallback, the one-hot blend, the scale, cross-entropy (sum / N); gradients
# to X and W. Prints one JSON line with the median step time.
#
#   python3 -m venv /tmp/tvenv && /tmp/tvenv/bin/pip install torch
#   /tmp/tvenv/bin/python scripts/torch_step.py N D C K THREADS SECONDS
#   cargo run --release --example bench_step -- --n N --d D --c C --k K --threads THREADS
import math, statistics, sys, time
import torch
import torch.nn.functional as F

n, d, c, k, threads = map(int, sys.argv[1:6])
secs = float(sys.argv[6])
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.randn(n, d, requires_grad=True)
w = torch.randn(c * k, d, requires_grad=True)
labels = torch.randint(0, c, (n,))
m = torch.empty(c).uniform_(0.4, 0.5)
s = 64.0
th = torch.cos(math.pi - m)
mm = torch.sin(math.pi - m) * m
onehot = F.one_hot(labels, c).float()

def step():
    x.grad = None
    w.grad = None
    cos = F.linear(F.normalize(x), F.normalize(w))
    if k > 1:
        cos = cos.view(n, c, k).max(dim=2)[0]
    phi = torch.cos(torch.acos(cos) + m)
    phi = torch.where(cos > th, phi, cos - mm)
    logits = (onehot * phi + (1 - onehot) * cos) * s
    loss = F.cross_entropy(logits, labels, reduction="sum") / n
    loss.backward()

for _ in range(3):
    step()
ts = []
t_end = time.perf_counter() + secs
while time.perf_counter() < t_end or len(ts) < 5:
    t = time.perf_counter()
    step()
    ts.append((time.perf_counter() - t) * 1e3)
print(f'{{"n":{n},"d":{d},"c":{c},"k":{k},"threads":{threads},"torch_eager_ms":{statistics.median(ts):.4f},"runs":{len(ts)}}}')
