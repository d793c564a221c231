# torch.onnx.export's side of bench/inference: writes each torchvision model (seeded, eval mode)
# as ONNX with a dynamic batch axis, for onnxruntime-node to time (Debian's Python has no
# onnxruntime, and timing both files in one runtime keeps the comparison about the graphs).
# argv: models(a,b) size out_dir opset
# Prints one JSON line: {"<model>": "<file>", ...}
import json, os, sys
import torch, torchvision

def main(models, size, out_dir, opset):
    out = {}
    for name in models.split(","):
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)().eval()
        file = os.path.join(out_dir, f"{name}.torch.onnx")
        x = torch.randn(1, 3, int(size), int(size))
        with torch.no_grad():
            torch.onnx.export(model, x, file, opset_version=int(opset), input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
        out[name] = file
    print(json.dumps(out))

if __name__ == "__main__":
    main(*sys.argv[1:5])
