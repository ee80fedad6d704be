"""MoveNet's input prologue, cut out of its graph and done once in numpy instead.

Both MoveNet graphs open with the same chain on the int32 RGB image: Cast to float, Sub 0,
Mul 1/127.5, Sub 1, Transpose NHWC → NCHW, then the first Conv. ONNX Runtime runs the Sub
and Mul with a per-channel constant three values at a time: ~1.5 ms of the Lightning crop's
~8.5 ms on one x86 core, against ~0.03 ms for the same arithmetic on the whole array here.
`strip` rewrites the graph so its first Conv reads a prepared float32 NCHW tensor; the
outputs are the same bit for bit (`prepare` does the same float32 operations in the same
order).

The edit works on the serialised ONNX model directly (the protobuf wire format, a few field
numbers of ``onnx.proto``), so the agent needs no ``onnx`` package. A graph that does not
open with exactly this chain and these constants is left alone, and the caller feeds it the
image as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

INPUT = "liftwatch_prepared_nchw"
"""Name of the graph input after the edit: float32 (n, 3, h, w), values ``rgb * SCALE - 1``."""

SCALE = np.float32(0.007843017578125)
"""MoveNet's 1/127.5 as its graph stores it (a float16-rounded constant), so that `prepare`
gives the Conv the very values the graph's own prologue would."""

EDIT_TAG = "prologue-1"
"""Names this edit in the optimised-graph cache key; change it when `strip` changes."""

# onnx.proto field numbers used here.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT = 1, 5, 11
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP, _NODE_ATTRIBUTE = 1, 2, 4, 5
_ATTR_NAME, _ATTR_I, _ATTR_INTS = 1, 3, 8
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_ELEM, _TENSOR_SHAPE, _SHAPE_DIM = 1, 1, 2, 1
_INIT_TYPE, _INIT_FLOATS, _INIT_NAME, _INIT_RAW = 2, 4, 8, 9
_FLOAT = 1
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def takes_prepared(session: Any) -> bool:
    """Whether an ONNX Runtime session runs an edited graph (feed it `prepare`'s tensor)."""
    return bool(session.get_inputs()[0].name == INPUT)


def feed(prepared: bool, name: str, rgb: npt.NDArray[Any], dtype: Any) -> dict[str, Any]:
    """A MoveNet session's inputs for (n, h, w, 3) RGB images: `prepare`'s tensor for an
    edited graph, else the images as the original graph's ``name`` and ``dtype``."""
    return {INPUT: prepare(rgb)} if prepared else {name: rgb.astype(dtype)}


def prepare(rgb: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """(n, h, w, 3) RGB images → the edited graph's (n, 3, h, w) float32 input."""
    x = rgb.transpose(0, 3, 1, 2).astype(np.float32, order="C")  # as ONNX Runtime reads it
    x *= SCALE
    x -= np.float32(1.0)
    return x


@dataclass(frozen=True)
class _Field:
    number: int
    wire: int
    raw: memoryview  # the whole field: tag, length and payload
    payload: memoryview  # the value's bytes (length-delimited fields) or the field itself
    value: int = 0  # varint fields


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(message: bytes | memoryview) -> list[_Field]:
    """The top-level fields of one protobuf message, in order (views into ``message``)."""
    buf = memoryview(message)
    fields = []
    pos = 0
    while pos < len(buf):
        start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        value = 0
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            payload_start = start
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            payload_start, pos = pos, pos + length
        elif wire == _I64:
            payload_start, pos = pos, pos + 8
        elif wire == _I32:
            payload_start, pos = pos, pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        fields.append(_Field(number, wire, buf[start:pos], buf[payload_start:pos], value))
    return fields


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def _strings(fields: list[_Field], number: int) -> list[str]:
    return [bytes(f.payload).decode() for f in fields if f.number == number and f.wire == _LEN]


@dataclass(frozen=True)
class _Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, list[_Field]]
    fields: list[_Field]

    @classmethod
    def parse(cls, payload: memoryview) -> _Node:
        fields = _fields(payload)
        attributes = {}
        for f in fields:
            if f.number == _NODE_ATTRIBUTE:
                attr = _fields(f.payload)
                attributes[_strings(attr, _ATTR_NAME)[0]] = attr
        ops = _strings(fields, _NODE_OP)
        return cls(
            ops[0] if ops else "",
            _strings(fields, _NODE_INPUT),
            _strings(fields, _NODE_OUTPUT),
            attributes,
            fields,
        )

    def int_attribute(self, name: str) -> int | None:
        found = [f.value for f in self.attributes.get(name, []) if f.number == _ATTR_I]
        return found[0] if found else None

    def ints_attribute(self, name: str) -> list[int]:
        out: list[int] = []
        for f in self.attributes.get(name, []):
            if f.number != _ATTR_INTS:
                continue
            if f.wire == _VARINT:
                out.append(f.value)
            else:  # packed
                pos = 0
                while pos < len(f.payload):
                    v, pos = _varint(f.payload, pos)
                    out.append(v)
        return out

    def with_input(self, old: str, new: str) -> bytes:
        parts: list[bytes | memoryview] = []
        for f in self.fields:
            if f.number == _NODE_INPUT and f.wire == _LEN and bytes(f.payload).decode() == old:
                parts.append(_len_field(_NODE_INPUT, new.encode()))
            else:
                parts.append(f.raw)
        return b"".join(parts)


def _initializer_name(fields: list[_Field]) -> str:
    names = _strings(fields, _INIT_NAME)
    return names[0] if names else ""


def _float_values(fields: list[_Field]) -> npt.NDArray[np.float32] | None:
    """An initializer's values when they are float32 and stored inline, else None."""
    if [f.value for f in fields if f.number == _INIT_TYPE] != [_FLOAT]:
        return None
    raw = [bytes(f.payload) for f in fields if f.number == _INIT_RAW]
    packed = [f.payload for f in fields if f.number == _INIT_FLOATS and f.wire == _LEN]
    single = [f.payload for f in fields if f.number == _INIT_FLOATS and f.wire == _I32]
    data = raw[0] if raw else b"".join(packed) + b"".join(single)
    return np.frombuffer(data, "<f4").astype(np.float32)


def _nchw_input(value_info: list[_Field]) -> bytes | None:
    """The graph input's ValueInfo for the prepared tensor: float32, dims (n, 3, h, w)."""
    types = [f for f in value_info if f.number == _VALUE_TYPE]
    if len(types) != 1:
        return None
    tensor = [f for f in _fields(types[0].payload) if f.number == _TYPE_TENSOR]
    if len(tensor) != 1:
        return None
    shapes = [f for f in _fields(tensor[0].payload) if f.number == _TENSOR_SHAPE]
    if len(shapes) != 1:
        return None
    dims = [f.raw for f in _fields(shapes[0].payload) if f.number == _SHAPE_DIM]
    if len(dims) != 4:
        return None
    shape = b"".join([dims[0], dims[3], dims[1], dims[2]])
    tensor_type = _encode_varint(_TENSOR_ELEM << 3 | _VARINT) + _encode_varint(_FLOAT)
    tensor_type += _len_field(_TENSOR_SHAPE, shape)
    type_proto = _len_field(_TYPE_TENSOR, tensor_type)
    return _len_field(_VALUE_NAME, INPUT.encode()) + _len_field(_VALUE_TYPE, type_proto)


def strip(model: bytes) -> bytes | None:
    """The model with its MoveNet prologue cut out, reading `INPUT`; None if it has none."""
    try:
        return _strip(model)
    except (ValueError, UnicodeDecodeError, IndexError):
        return None


def _strip(model: bytes) -> bytes | None:
    top = _fields(model)
    graphs = [i for i, f in enumerate(top) if f.number == _MODEL_GRAPH]
    if len(graphs) != 1:
        return None
    graph = _fields(top[graphs[0]].payload)
    inputs = [i for i, f in enumerate(graph) if f.number == _GRAPH_INPUT]
    constants: dict[str, list[_Field]] = {}
    initializer_names: dict[int, str] = {}
    for i, f in enumerate(graph):
        if f.number == _GRAPH_INITIALIZER:
            tensor_fields = _fields(f.payload)
            initializer_names[i] = _initializer_name(tensor_fields)
            constants[initializer_names[i]] = tensor_fields
    # Graph inputs that are initializers (older exporters list them) are not the image.
    names = {i: _strings(_fields(graph[i].payload), _VALUE_NAME)[0] for i in inputs}
    image_inputs = [i for i in inputs if names[i] not in constants]
    if len(image_inputs) != 1:
        return None
    input_field = image_inputs[0]
    image = names[input_field]
    nodes = {i: _Node.parse(f.payload) for i, f in enumerate(graph) if f.number == _GRAPH_NODE}
    consumers: dict[str, list[int]] = {}
    for i, node in nodes.items():
        for name in node.inputs:
            consumers.setdefault(name, []).append(i)

    def only_consumer(name: str) -> tuple[int, _Node] | None:
        users = consumers.get(name, [])
        return (users[0], nodes[users[0]]) if len(users) == 1 else None

    def const_operand(node: _Node, tensor: str) -> npt.NDArray[np.float32] | None:
        others = [n for n in node.inputs if n != tensor]
        if len(others) != 1 or len(node.inputs) != 2 or others[0] not in constants:
            return None
        return _float_values(constants[others[0]])

    def is_const(node: _Node, tensor: str, op: str, value: np.float32) -> bool:
        c = const_operand(node, tensor)
        return node.op == op and c is not None and c.size > 0 and bool(np.all(c == value))

    removed: list[int] = []
    tensor = image
    step = only_consumer(tensor)
    if step is None or step[1].op != "Cast" or step[1].int_attribute("to") != _FLOAT:
        return None
    removed.append(step[0])
    tensor = step[1].outputs[0]
    step = only_consumer(tensor)
    # A batch "unstack" of one image (Split on axis 0 into one piece) is the identity.
    if step is not None and step[1].op == "Split" and len(step[1].outputs) == 1:
        if step[1].int_attribute("axis") != 0 or len(step[1].inputs) != 1:
            return None
        removed.append(step[0])
        tensor = step[1].outputs[0]
        step = only_consumer(tensor)
    for op, value in (("Sub", np.float32(0.0)), ("Mul", SCALE), ("Sub", np.float32(1.0))):
        if step is None or not is_const(step[1], tensor, op, value):
            return None
        if op == "Sub" and step[1].inputs[0] != tensor:  # c - x is not x - c
            return None
        removed.append(step[0])
        tensor = step[1].outputs[0]
        step = only_consumer(tensor)
    if step is None or step[1].op != "Transpose" or step[1].ints_attribute("perm") != [0, 3, 1, 2]:
        return None
    removed.append(step[0])
    tensor = step[1].outputs[0]
    step = only_consumer(tensor)
    if step is None or step[1].op != "Conv":
        return None
    conv_index, conv = step
    new_input = _nchw_input(_fields(graph[input_field].payload))
    if new_input is None:
        return None
    still_used = {name for i, n in nodes.items() if i not in removed for name in n.inputs}
    # Constants only the removed steps read go too (ONNX Runtime would warn about them).
    dropped = {name for i in removed for name in nodes[i].inputs} - still_used
    parts: list[bytes | memoryview] = []
    for i, f in enumerate(graph):
        if i in removed:
            continue
        if i == conv_index:
            parts.append(_len_field(_GRAPH_NODE, conv.with_input(tensor, INPUT)))
        elif i == input_field:
            parts.append(_len_field(_GRAPH_INPUT, new_input))
        elif initializer_names.get(i) in dropped:
            continue
        else:
            parts.append(f.raw)
    new_graph = _len_field(_MODEL_GRAPH, b"".join(parts))
    return b"".join(new_graph if i == graphs[0] else f.raw for i, f in enumerate(top))
