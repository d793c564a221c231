# PyTorch side of bench/model_forward: eval-mode forward latency of torchvision models.
# argv: threads steps warmup model:batch:size[,model:batch:size...]
# Prints one JSON line: {"<model>": [ms, ms, ...], ...}
import json, sys
import torch, torchvision
from timing import forward_ms

def main(threads, steps, warmup, cases):
    torch.set_num_threads(int(threads))
    out = {}
    for case in cases.split(","):
        name, batch, size = case.split(":")
        torch.manual_seed(0)
        kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
        model = getattr(torchvision.models, name)(**kwargs).eval()
        x = torch.randn(int(batch), 3, int(size), int(size))
        out[name] = forward_ms(model, x, steps, warmup)
        del model
    print(json.dumps(out))

if __name__ == "__main__":
    main(*sys.argv[1:5])
