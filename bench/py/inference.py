# PyTorch side of bench/inference: eval-mode forward latency of torchvision models at each batch
# size, in each mode: fp32 (NCHW), fp32 channels-last, bf16 autocast + channels-last.
# argv: threads steps warmup models(a,b) batches(1,8) size modes(fp32,fp32cl,bf16cl)
# Prints one JSON line: {"<model>:<batch>:<mode>": [ms, ms, ...], ...}
import json, sys, time
import torch, torchvision

def latencies(model, x, mode, steps, warmup):
    cl = mode in ("fp32cl", "bf16cl")
    if cl:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16cl"):
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return times

def main(threads, steps, warmup, models, batches, size, modes):
    torch.set_num_threads(int(threads))
    out = {}
    for name in models.split(","):
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)().eval()
        for batch in batches.split(","):
            x = torch.randn(int(batch), 3, int(size), int(size))
            for mode in modes.split(","):
                out[f"{name}:{batch}:{mode}"] = latencies(model, x, mode, int(steps), int(warmup))
        del model
    print(json.dumps(out))

if __name__ == "__main__":
    main(*sys.argv[1:8])
