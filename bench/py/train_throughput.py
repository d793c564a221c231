# PyTorch side of bench/train_throughput: whole training epochs including data loading and
# augmentation (random crop with padding + horizontal flip + normalisation, done on batches of
# tensors, the fastest way to do them in PyTorch), SGD with Nesterov momentum.
# argv: threads model images batch size channels mode(fp32|fp32cl|bf16cl) epochs pad (0: flip only)
# Prints one JSON line: {"images_per_s": [...per epoch...]}
import gzip, json, sys, time
import numpy as np
import torch, torchvision
import torch.nn.functional as F
sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/test/helpers")
from ref_models import airbench_m, cifar_resnet20

def fashion_mnist(n):
    with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))

def synthetic(n, c, s, classes=10):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=g), torch.randint(0, classes, (n,), generator=g)

def build(name, channels):
    if name == "resnet20":
        return cifar_resnet20(num_classes=10, in_channels=channels)
    if name == "airbench_m":
        return airbench_m(num_classes=10, in_channels=channels)
    m = getattr(torchvision.models, name)(num_classes=10)
    return m

def augment(x, pad):
    n, c, h, w = x.shape
    if pad == 0:
        return torch.where(torch.rand(n, 1, 1, 1) < 0.5, x.flip(3), x)
    xp = F.pad(x, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (n, 1, 1, 1))
    left = torch.randint(0, 2 * pad + 1, (n, 1, 1, 1))
    rows = (torch.arange(h).view(1, 1, h, 1) + top).expand(n, c, h, w + 2 * pad)
    out = xp.gather(2, rows)
    cols = (torch.arange(w).view(1, 1, 1, w) + left).expand(n, c, h, w)
    out = out.gather(3, cols)
    flip = torch.rand(n, 1, 1, 1) < 0.5
    return torch.where(flip, out.flip(3), out)

def main(threads, name, images, batch, size, channels, mode, epochs, pad):
    threads, images, batch, size, channels, epochs, pad = map(int, (threads, images, batch, size, channels, epochs, pad))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x_all, y_all = fashion_mnist(images) if size == 28 else synthetic(images, channels, size)
    model = build(name, channels)
    cl = mode in ("fp32cl", "bf16cl")
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()
    rates = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(images)
        for b in range(images // batch):
            idx = perm[b * batch:(b + 1) * batch]
            x = augment(x_all[idx].float().div_(255).sub_(0.5).div_(0.25), pad)
            y = y_all[idx]
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16cl"):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        rates.append(images // batch * batch / (time.perf_counter() - t0))
    print(json.dumps({"images_per_s": rates}))

if __name__ == "__main__":
    main(*sys.argv[1:10])
