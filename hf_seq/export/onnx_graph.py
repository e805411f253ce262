"""A rewrite of the exported ONNX graphs that makes one-token decoding cheaper on ONNX Runtime's CPU provider.

The TorchScript exporter writes a linear layer on a 3-D input (B, 1, C) as `MatMul(x, W^T)` with the weight folded to
(in, out) and a separate bias `Add`. For one row (a batch-1 decode step) ONNX Runtime's `Gemm` with `transB=1` on the
(out, in) weight runs that product about 1.8x faster than `MatMul` (MLAS, one thread, 650 x 10000, issue 21), and
the decode step of a recurrent LM is three such products plus small element-wise ops. `matmul_to_gemm` turns every
`MatMul` by a 2-D float initializer into `Gemm(transB=1)` (flattening and restoring leading dimensions when the input
is not known to be 2-D) and folds a following bias `Add` into the `Gemm`. The arithmetic is the same product and sum.
"""

from __future__ import annotations

import numpy as np

from ._common import require

FLOAT = 1  # onnx.TensorProto.FLOAT


def _consumers(graph) -> dict[str, list]:
    uses: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    for out in graph.output:
        uses.setdefault(out.name, []).append(None)
    return uses


def _ranks(model) -> dict[str, int]:
    """Tensor name -> rank, where ONNX shape inference knows it."""
    onnx = require("onnx")
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape"):
            ranks[info.name] = len(tensor_type.shape.dim)
    return ranks


def _bias_of(add, product: str, initializers: dict, width: int):
    """The (width,) float bias that `add` adds to `product`, or None."""
    if add is None or add.op_type != "Add" or len(add.input) != 2:
        return None
    other = add.input[1] if add.input[0] == product else add.input[0]
    init = initializers.get(other)
    if init is None or init.data_type != FLOAT or list(init.dims) != [width]:
        return None
    return other


def matmul_to_gemm(model) -> int:
    """Rewrite `model` (an onnx.ModelProto) in place; returns how many MatMuls became Gemms."""
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    uses = _consumers(graph)
    ranks = _ranks(model)
    new_nodes, dropped, transposed = [], set(), {}
    rewritten = 0
    for node in graph.node:
        if id(node) in dropped:
            continue
        weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or weight.data_type != FLOAT or len(weight.dims) != 2:
            new_nodes.append(node)
            continue
        x, product = node.input[0], node.output[0]
        width = int(weight.dims[1])
        if node.input[1] not in transposed:  # (in, out) -> (out, in): the layout Gemm(transB=1) reads row by row
            name = f"{node.input[1]}__gemm_t"
            graph.initializer.append(
                numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(weight).T), name)
            )
            transposed[node.input[1]] = name
        readers = uses.get(product, [])
        add = readers[0] if len(readers) == 1 else None
        bias = _bias_of(add, product, initializers, width)
        result = add.output[0] if bias is not None else product
        inputs = [x, transposed[node.input[1]]] + ([bias] if bias is not None else [])
        prefix = f"{node.name or product}__gemm"
        if ranks.get(x) == 2:
            new_nodes.append(helper.make_node("Gemm", inputs, [result], name=prefix, transB=1))
        else:
            # (..., in) -> (rows, in) -> Gemm -> (rows, out) -> (..., out)
            lead, flat, rows, shape = (f"{prefix}_{s}" for s in ("lead", "flat", "rows", "shape"))
            width_name = f"{prefix}_width"
            graph.initializer.append(numpy_helper.from_array(np.array([width], np.int64), width_name))
            new_nodes += [
                helper.make_node("Shape", [x], [lead], name=f"{prefix}_shape_in", end=-1),
                helper.make_node("Flatten", [x], [flat], name=f"{prefix}_flatten", axis=-1),
                helper.make_node("Gemm", [flat, *inputs[1:]], [rows], name=prefix, transB=1),
                helper.make_node("Concat", [lead, width_name], [shape], name=f"{prefix}_concat", axis=0),
                helper.make_node("Reshape", [rows, shape], [result], name=f"{prefix}_reshape"),
            ]
        if bias is not None:
            dropped.add(id(add))
        rewritten += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    # the (in, out) copies no graph node reads any more
    still_read = {name for node in graph.node for name in node.input}
    keep = [init for init in graph.initializer if init.name in still_read]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    return rewritten


def rewrite_file(path: str) -> int:
    """`matmul_to_gemm` on the .onnx file at `path`, in place."""
    onnx = require("onnx")
    import os

    model = onnx.load(path)
    count = matmul_to_gemm(model)
    if count:
        tmp = path + ".gemm.tmp"
        onnx.save(model, tmp)
        os.replace(tmp, path)
    return count


__all__ = ["matmul_to_gemm", "rewrite_file"]
