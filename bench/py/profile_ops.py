# PyTorch side of bench/profile_ops: torch.profiler on the same step convkit profiles (a training
# step: forward, cross-entropy, backward, SGD with Nesterov momentum; or an eval forward), self CPU
# time per op: each step profiled on its own, the median over the steps (a VM that preempts the
# process puts 10-25 ms into whichever op was running; a mean would carry it).
# argv: threads kind(train|infer) model batch size channels mode(fp32|fp32cl|bf16cl) steps
# Prints one JSON line: {"step_ms": ..., "ops": {"aten::...": self_ms_per_step, ...}}
import json, statistics, sys, time
import torch, torchvision
import torch.nn.functional as F
from torch.profiler import profile, ProfilerActivity
sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/test/helpers")
from ref_models import airbench_m, cifar_resnet20

def build(name, channels, classes):
    if name == "resnet20":
        return cifar_resnet20(num_classes=classes, in_channels=channels)
    if name == "airbench_m":
        return airbench_m(num_classes=classes, in_channels=channels)
    return getattr(torchvision.models, name)(num_classes=classes)

def main(threads, kind, name, batch, size, channels, mode, steps):
    threads, batch, size, channels, steps = map(int, (threads, batch, size, channels, steps))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    train = kind == "train"
    model = build(name, channels, 10 if train else 1000)
    cl = mode in ("fp32cl", "bf16cl")
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, 10, (batch,))
    if cl:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train(train)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16cl"):
            if not train:
                with torch.no_grad():
                    return model(x)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    walls = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        walls.append((time.perf_counter() - t0) * 1e3)
    per_step = []
    for _ in range(steps):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        per_step.append({e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()})
    names = set().union(*per_step)
    ops = {k: statistics.median(s.get(k, 0.0) for s in per_step) for k in names}
    print(json.dumps({"step_ms": statistics.median(walls), "ops": ops}))

if __name__ == "__main__":
    main(*sys.argv[1:9])
