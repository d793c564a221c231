# Node counts of torchvision models exported by torch.onnx.export (eval mode, constant folding,
# dynamic batch), the reference for convkit's exporter. Usage: torch_onnx_counts.py SIZE OPSET NAME...
# Prints one JSON object: {name: {"nodes": n, "ops": {op_type: count}}}.
import io, json, sys, warnings
import torch, torchvision, onnx

warnings.filterwarnings("ignore")
size, opset, names = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
out = {}
for name in names:
    model = getattr(torchvision.models, name)(weights=None).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, torch.randn(1, 3, size, size), buf, opset_version=opset, do_constant_folding=True,
                          input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    graph = onnx.load_from_string(buf.getvalue()).graph
    ops = {}
    for n in graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    out[name] = {"nodes": len(graph.node), "ops": ops}
print(json.dumps(out))
