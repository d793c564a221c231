# torchvision side of bench/data_augment: the same pipelines applied the usual way, one image
# at a time (as a torch DataLoader worker does), on a uint8 batch of the same shape.
# Prints one JSON line: {pipeline name: median ms per batch}
import json, sys, time
import torch
import torchvision.transforms as T

batch, rounds, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
y = torch.randint(0, 10, (batch,))
mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)
to_float = T.ConvertImageDtype(torch.float32)
norm = T.Normalize(mean, std)
cifar = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]

PIPELINES = {
    'normalize only': T.Compose([to_float, norm]),
    'CIFAR: crop 32 pad 4 + flip + normalize': T.Compose(cifar + [to_float, norm]),
    'CIFAR + random erasing': T.Compose(cifar + [to_float, norm, T.RandomErasing()]),
    # torchvision 0.14's equalize needs contiguous input, which RandomCrop's view is not
    'CIFAR + RandAugment(2, 9)': T.Compose(cifar + [T.Lambda(lambda t: t.contiguous()), T.RandAugment(2, 9), to_float, norm]),
    'randomResizedCrop 32 + flip + normalize': T.Compose([T.RandomResizedCrop(32, antialias=True), T.RandomHorizontalFlip(), to_float, norm]),
}

out = {}
for name, tf in PIPELINES.items():
    times = []
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        torch.stack([tf(img) for img in x])
        if r > 0:
            times.append((time.perf_counter() - t0) * 1000)
    out[name] = sorted(times)[len(times) // 2]
print(json.dumps(out))
