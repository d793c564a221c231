# PyTorch side of bench/distributed: all-reduce of float32 tensors over torch.distributed's Gloo
# backend, started from torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) as
# convkit's workers are, timed the same way (a barrier, then `iters` all-reduces, rank 0's clock).
# argv: sizes in bytes (comma-separated), iterations budget in bytes. Rank 0 prints one JSON line:
# {"sizes": [...], "ms": [...]} (median ms per all-reduce of each size).
import json, sys, time
import torch
import torch.distributed as dist

sizes = [int(s) for s in sys.argv[1].split(',')]
budget = int(sys.argv[2])
torch.set_num_threads(1)
dist.init_process_group('gloo', init_method='env://')
out = []
for size in sizes:
    t = torch.ones(size // 4)
    iters = max(5, min(200, budget // size))
    for _ in range(3):
        dist.all_reduce(t)
    times = []
    for _ in range(iters):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    out.append(times[len(times) // 2])
if dist.get_rank() == 0:
    print(json.dumps({'sizes': sizes, 'ms': out}))
dist.destroy_process_group()
