# The PyTorch side's one timing loop: eval-mode forward latencies in milliseconds, warm-up steps
# left out, under no_grad and whatever context the caller enters (autocast, a quantized engine).
import time
import torch

def forward_ms(model, x, steps, warmup):
    times = []
    with torch.no_grad():
        for i in range(int(warmup) + int(steps)):
            t0 = time.perf_counter()
            model(x)
            if i >= int(warmup):
                times.append((time.perf_counter() - t0) * 1e3)
    return times
