# PyTorch side of bench/quantize: PyTorch's own int8 as an anchor. FX graph mode post-training
# static quantization of a seeded torchvision model on the given engine (Debian's PyTorch 1.13 has
# onednn and qnnpack, no fbgemm), calibrated on random batches, then eval-mode latency of the
# int8 and the fp32 model at each batch size.
# argv: threads steps warmup models(a,b) batches(1,8) size engine(onednn)
# Prints one JSON line: {"<model>:<batch>:int8": [ms, ...], "<model>:<batch>:fp32": [ms, ...], ...}
import json, sys, warnings
import torch, torchvision
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from timing import forward_ms

warnings.filterwarnings("ignore")

def main(threads, steps, warmup, models, batches, size, engine):
    torch.set_num_threads(int(threads))
    torch.backends.quantized.engine = engine
    size = int(size)
    out = {}
    for name in models.split(","):
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)().eval()
        example = torch.randn(1, 3, size, size)
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example_inputs=(example,))
        with torch.no_grad():
            for _ in range(4):
                prepared(torch.randn(4, 3, size, size))
        q = convert_fx(prepared)
        for batch in batches.split(","):
            x = torch.randn(int(batch), 3, size, size)
            out[f"{name}:{batch}:int8"] = forward_ms(q, x, steps, warmup)
            out[f"{name}:{batch}:fp32"] = forward_ms(model, x, steps, warmup)
        del model, q, prepared
    print(json.dumps(out))

if __name__ == "__main__":
    main(*sys.argv[1:8])
