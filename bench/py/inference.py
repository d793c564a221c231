# PyTorch side of bench/inference: eval-mode forward latency of torchvision models at each batch
# size, in each mode: fp32 (NCHW), fp32 channels-last, bf16 autocast + channels-last.
# argv: threads steps warmup models(a,b) batches(1,8) size modes(fp32,fp32cl,bf16cl)
# Prints one JSON line: {"<model>:<batch>:<mode>": [ms, ms, ...], ...}
import json, sys
import torch, torchvision
from timing import forward_ms

def latencies(model, x, mode, steps, warmup):
    cl = mode in ("fp32cl", "bf16cl")
    if cl:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16cl"):
        return forward_ms(model, x, steps, warmup)

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
