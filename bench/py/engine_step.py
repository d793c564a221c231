# PyTorch side of bench/engine_step: the same small ResNet-style net, the same step
# (forward, cross-entropy, backward, SGD with momentum), timed the same way.
# Prints one JSON line: {"step_ms": [...], "numel_ns": ..., "add_ns": ...}
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

ROUNDS = 7

def per_call(n, body):
    """ns of CPU time per call: the median of ROUNDS rounds, as bench/engine_step.ts does."""
    ns = []
    for _ in range(ROUNDS):
        t0 = time.process_time()
        body(n)
        ns.append((time.process_time() - t0) / n * 1e9)
    return sorted(ns)[ROUNDS // 2]

def main(batch, steps, warmup, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    a = torch.ones(1)
    def numel(n):
        for _ in range(n):
            a.numel()
    def add(n):
        for _ in range(n):
            torch.add(a, a)
    numel_ns = per_call(200000, numel)
    add_ns = per_call(50000, add)
    print(json.dumps({"step_ms": times, "numel_ns": numel_ns, "add_ns": add_ns}))

if __name__ == "__main__":
    main(*map(int, sys.argv[1:5]))
