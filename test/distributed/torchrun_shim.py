# torchrun for the tests. Debian's torch 1.13 on Python 3.11: Std.from_str returns None for the
# default --redirects and --tee, which torchrun then fails on; those are read as NONE (no redirection).
import sys, runpy
import torch.distributed.elastic.multiprocessing.api as api
orig = api.to_map
api.to_map = lambda v, n: {i: api.Std.NONE for i in range(n)} if v is None else orig(v, n)
import torch.distributed.elastic.multiprocessing as mp
if hasattr(mp, 'to_map'): mp.to_map = api.to_map
sys.argv = ['torchrun'] + sys.argv[1:]
runpy.run_module('torch.distributed.run', run_name='__main__')
