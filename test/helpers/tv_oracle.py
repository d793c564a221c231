# The torchvision oracle for parity tests: builds each requested model with torchvision 0.14,
# gives it random weights (BN running statistics and affine parameters too, so eval outputs
# exercise them), runs one input, and writes state dict + input + output as safetensors.
#
#   /usr/bin/python3 tv_oracle.py spec.json outdir
# spec: [{"name": "resnet18", "kwargs": {"num_classes": 10}, "input": [2, 3, 64, 64],
#         "seed": 0, "train": false, "builder": "torchvision.models.resnet18", "backward": false}]
# "backward": true also runs loss = sum over outputs of (o ** 2).sum() / 2 backward and writes each
# parameter's gradient as 'grad.<name>' (the state written is the one after the forward).
import json, struct, sys, importlib
import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.float16: "F16",
          torch.bfloat16: "BF16", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}

def save_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for c in chunks:
            f.write(c)

def randomize(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) and m.running_mean is not None:
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)

def build(case):
    path = case.get("builder", "torchvision.models." + case["name"])
    mod, fn = path.rsplit(".", 1)
    return getattr(importlib.import_module(mod), fn)(**case.get("kwargs", {}))

def flatten(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if hasattr(out, "_fields"):  # namedtuples (GoogLeNetOutputs, InceptionOutputs)
        return [o for o in out if o is not None]
    return [o for o in out]

def main(spec_path, outdir):
    torch.set_num_threads(2)
    for case in json.load(open(spec_path)):
        torch.manual_seed(case.get("seed", 0))
        model = build(case)
        randomize(model)
        model.train(case.get("train", False))
        x = torch.randn(*case["input"])
        torch.manual_seed(case.get("seed", 0) + 1)
        backward = case.get("backward", False)
        with torch.set_grad_enabled(backward):
            outs = flatten(model(x))
        # "weights": false leaves the state dict out, for models too big to ship whose init the
        # caller reproduces from the seed (the keys and the parameter count are still written)
        tensors = {"p." + k: v for k, v in model.state_dict().items()} if case.get("weights", True) else {}
        if backward:
            sum((o * o).sum() / 2 for o in outs).backward()
            tensors.update({"grad." + k: p.grad for k, p in model.named_parameters() if p.grad is not None})
        tensors["input"] = x
        for i, o in enumerate(outs):
            tensors[f"output.{i}"] = o
        save_safetensors(f"{outdir}/{case['id']}.safetensors", tensors)
        meta = {"keys": list(model.state_dict().keys()),
                "num_params": sum(p.numel() for p in model.parameters())}
        json.dump(meta, open(f"{outdir}/{case['id']}.json", "w"))

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
