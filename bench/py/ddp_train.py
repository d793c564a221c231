# PyTorch side of bench/distributed's training table: torchvision's resnet18 (10 classes, 3x32x32
# input, channels-last fp32, SGD lr 0.01 momentum 0.9, one thread per process) under
# torch.nn.parallel.DistributedDataParallel over Gloo, started from torchrun's variables (RANK,
# WORLD_SIZE, MASTER_ADDR, MASTER_PORT) as convkit's workers are; alone (WORLD_SIZE=1) without DDP.
# Timed as trainWorker times convkit: 2 warm-up steps, a barrier, then the median of `steps` steps.
# argv: steps batch split|per-process bucket_view(on|off) comm_hook(allreduce|fp16)
# batch is the global batch: split over the processes, or whole in each (per-process).
# Rank 0 prints one JSON line: {"stepMs": median ms per step, "batch": global batch}.
import json, os, statistics, sys, time
# c10d logs registering a comm hook at INFO on stderr, between the benchmark's tables
os.environ.setdefault('GLOG_minloglevel', '1')
import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision
from torch.nn.parallel import DistributedDataParallel as DDP

def wrap(model, world, bucket_view, hook):
    if world == 1:
        return model
    dist.init_process_group('gloo', init_method='env://')
    net = DDP(model, gradient_as_bucket_view=bucket_view)
    # the C++ hook convkit registers, not the Python fp16_compress_hook (a Python call per bucket)
    if hook == 'fp16':
        net._register_builtin_comm_hook(dist.BuiltinCommHookType.FP16_COMPRESS)
    return net

def main(steps, batch, mode, bucket_view, hook):
    steps, batch = int(steps), int(batch)
    torch.set_num_threads(1)
    world = int(os.environ.get('WORLD_SIZE', '1'))
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    net = wrap(model, world, bucket_view == 'on', hook)
    local = batch if mode == 'per-process' else batch // world
    x = torch.randn(local, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (local,))

    def step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
        return (time.perf_counter() - t0) * 1e3

    for _ in range(2):
        step()
    if world > 1:
        dist.barrier()
    times = [step() for _ in range(steps)]
    if world == 1 or dist.get_rank() == 0:
        print(json.dumps({'stepMs': statistics.median(times), 'batch': local * world}))
    if world > 1:
        dist.destroy_process_group()

if __name__ == '__main__':
    main(*sys.argv[1:6])
