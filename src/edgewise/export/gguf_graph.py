"""The nodes and initializers a GGUF transcode writes into an fp32 genai graph: MatMulNBits over a GGUF's blocks
(plus the per-block min term), GatherBlockQuantized lookups over the same packed tables, and the 16-bit storage
of GGUF scales. gguf_transcode decides what replaces what; this module only writes it.
"""

from __future__ import annotations

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.export.gguf_blocks import Blocks

MS_DOMAIN = "com.microsoft"


class GraphWriter:
    """Collects the nodes and initializers that replace one fp32 graph's MatMuls."""

    def __init__(self, model, accuracy_level: int):
        self.model, self.g = model, model.graph
        self.accuracy_level = accuracy_level
        self.new_inits: list = []
        self.block_sums: dict[tuple[str, int], str] = {}
        self.extra_nodes: list = []
        self.tables: set[str] = set()

    def init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.new_inits.append(numpy_helper.from_array(array, name))
        return name

    def float_init(self, name: str, array: np.ndarray) -> str:
        """An fp32 tensor (scales, mins) stored in 16 bits when every value is an fp16 number, which GGUF's own
        scales are: a Cast of an initializer is folded by ORT when the session loads, so MatMulNBits still sees
        fp32 constants (prepacking, memory and speed unchanged) while the file carries 2 bytes per value."""
        from onnx import TensorProto

        array = np.ascontiguousarray(array, np.float32)
        half = array.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), array):
            return self.init(name, array)
        self.init(name + ".f16", half)
        self.node("Cast", [name + ".f16"], [name], name + "/Cast", to=TensorProto.FLOAT)
        return name

    def scales(self, b: Blocks, prefix: str) -> str:
        """(N, K/block) scales, written once per prefix (a tied head and its lookup share them)."""
        name = f"{prefix}.scales"
        if name not in self.tables:
            self.float_init(name, b.scales)
            self.tables.add(name)
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs):
        from onnx import helper

        n = helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs)
        self.extra_nodes.append(n)
        return n

    def block_sum(self, x: str, K: int, block: int) -> str:
        """(…, K) -> (…, K / block): the per-block input sums that the min term multiplies (shared per input)."""
        key = (x, block)
        if key not in self.block_sums:
            base = f"{x}/blocksum{block}"
            shape = self.init(base + "/shape", np.array([0, 0, K // block, block], np.int64))
            axes = self.init(base + "/axes", np.array([-1], np.int64))
            self.node("Reshape", [x, shape], [base + "/r"], base + "/Reshape")
            self.node("ReduceSum", [base + "/r", axes], [base], base + "/ReduceSum", keepdims=0)
            self.block_sums[key] = base
        return self.block_sums[key]

    def table(self, b: Blocks, prefix: str) -> str:
        """The packed codes (N, K/block, block*bits/8) and, with mins, the (K/block, N) mins: written once per
        prefix, so a tied head and its embedding lookup share one copy."""
        name = f"{prefix}.B{b.bits}"
        if name not in self.tables:
            c = b.codes.reshape(b.rows, b.K // b.block, b.block)
            packed = (c[..., 0::2] | (c[..., 1::2] << 4)).astype(np.uint8) if b.bits == 4 else c
            self.init(name, np.ascontiguousarray(packed))
            if b.mins is not None:
                self.float_init(f"{prefix}.mins", b.mins.T)
            self.tables.add(name)
        return name

    def matmul_nbits(self, x: str, b: Blocks, prefix: str, out: str, sums_in_kernel: bool = False) -> None:
        """out = x @ W^T for W given by blocks b (rows = N outputs), plus the min term when b has mins.

        sums_in_kernel: the min term's block sums come out of the same MatMulNBits, as K/block extra output rows
        whose weights are exactly 1 on their block (code mid + 1, scale 1) and 0 elsewhere, and a Split parts them
        from the outputs: one node in place of the Reshape + ReduceSum pair. Not for a table a lookup shares."""
        N, K = b.rows, b.K
        main = out if b.mins is None else out + "/codes"
        if b.mins is not None and sums_in_kernel:
            kb = K // b.block
            ones = Blocks(indicator_codes(K, b.block, b.bits), np.ones((kb, kb), np.float32), None, b.bits, b.block)
            full = Blocks.concat_rows([Blocks(b.codes, b.scales, None, b.bits, b.block), ones])
            B, S = self.table(full, prefix), self.scales(full, prefix)
            self.node("MatMulNBits", [x, B, S], [out + "/codes+sums"], prefix + "/MatMulNBits", MS_DOMAIN,
                      K=K, N=N + kb, bits=b.bits, block_size=b.block, accuracy_level=self.accuracy_level)
            sums = out + "/blocksums"
            self.split(out + "/codes+sums", [N, kb], [main, sums], prefix + "/SplitSums")
            self.float_init(f"{prefix}.mins", b.mins.T)
        else:
            B, S = self.table(b, prefix), self.scales(b, prefix)
            self.node("MatMulNBits", [x, B, S], [main], prefix + "/MatMulNBits", MS_DOMAIN,
                      K=K, N=N, bits=b.bits, block_size=b.block, accuracy_level=self.accuracy_level)
            if b.mins is not None:
                sums = self.block_sum(x, K, b.block)
        if b.mins is not None:
            M = f"{prefix}.mins"
            self.node("MatMul", [sums, M], [out + "/mins"], prefix + "/MinMatMul")
            self.node("Add", [main, out + "/mins"], [out], prefix + "/AddMins")

    def split(self, x: str, sizes: list[int], outs: list[str], name: str) -> None:
        """Split the last axis of x into len(sizes) outputs."""
        sizes_name = self.init(name + "/sizes", np.array(sizes, np.int64))
        self.node("Split", [x, sizes_name], outs, name, axis=-1)

    def lookup(self, ids: str, b: Blocks, prefix: str, out: str, axis: int) -> None:
        """out = W[ids] through GatherBlockQuantized over the packed table the head uses (no second copy)."""
        N, K = b.rows, b.K
        kb = K // b.block
        B = self.table(b, prefix)
        # GatherBlockQuantized wants the scales as (N, K/block, 1): a Reshape of the head's own, folded at load.
        S3 = prefix + ".scales3"
        if S3 not in self.tables:
            shape3 = self.init(prefix + "/scales3_shape", np.array([N, kb, 1], np.int64))
            self.node("Reshape", [self.scales(b, prefix), shape3], [S3], prefix + "/ReshapeScales")
            self.tables.add(S3)
        blocks_out = out + "/blocks"
        self.node("GatherBlockQuantized", [B, ids, S3], [blocks_out], out + "/GatherBlockQuantized", MS_DOMAIN,
                  bits=b.bits, block_size=b.block, gather_axis=axis, quantize_axis=2)
        if b.mins is not None:
            # mins are stored (kb, N) for the head: gather columns, move kb last, broadcast over the block.
            self.node("Gather", [f"{prefix}.mins", ids], [out + "/m"], out + "/GatherMins", axis=1)
            self.node("Transpose", [out + "/m"], [out + "/mt"], out + "/TransposeMins", perm=[1, 2, 0])
            ax = self.init(out + "/unsq", np.array([-1], np.int64))
            self.node("Unsqueeze", [out + "/mt", ax], [out + "/mu"], out + "/UnsqueezeMins")
            self.node("Add", [blocks_out, out + "/mu"], [out + "/withmins"], out + "/AddLookupMins")
            blocks_out = out + "/withmins"
        shape = self.init(out + "/lookup_shape", np.array([0, 0, K], np.int64))
        self.node("Reshape", [blocks_out, shape], [out], out + "/LookupReshape")

    def lookup_split(self, ids: str, parts: list[Blocks], prefixes: list[str], out: str, axis: int) -> None:
        """A lookup over a table whose rows are split in two containers (rows [0, s) and [s, V)): both halves are
        gathered with clamped ids and Where picks the right one per token."""
        from onnx import TensorProto

        if len(parts) != 2 or axis != 0:
            raise EdgewiseError(f"a split token table needs 2 parts on axis 0, got {len(parts)} on axis {axis}")
        s = parts[0].rows
        split = self.init(out + "/split", np.array(s, np.int64))
        last = self.init(out + "/split_last", np.array(s - 1, np.int64))
        zero = self.init(out + "/zero", np.array(0, np.int64))
        self.node("Cast", [ids], [out + "/ids64"], out + "/CastIds", to=TensorProto.INT64)
        ids64 = out + "/ids64"
        self.node("Min", [ids64, last], [out + "/lo_ids"], out + "/MinIds")
        self.node("Sub", [ids64, split], [out + "/hi_ids_raw"], out + "/SubIds")
        self.node("Max", [out + "/hi_ids_raw", zero], [out + "/hi_ids"], out + "/MaxIds")
        self.lookup(out + "/lo_ids", parts[0], prefixes[0], out + "/lo", axis)
        self.lookup(out + "/hi_ids", parts[1], prefixes[1], out + "/hi", axis)
        self.node("Less", [ids64, split], [out + "/is_lo"], out + "/LessIds")
        ax = self.init(out + "/unsq_ax", np.array([-1], np.int64))
        self.node("Unsqueeze", [out + "/is_lo", ax], [out + "/is_lo3"], out + "/UnsqueezeIds")
        self.node("Where", [out + "/is_lo3", out + "/lo", out + "/hi"], [out], out + "/WhereRows")


def indicator_codes(K: int, block: int, bits: int) -> np.ndarray:
    """(K/block, K) codes whose weights at scale 1 are 1 on row i's own block i and 0 elsewhere: x @ these^T is
    x's per-block sums."""
    mid = 1 << (bits - 1)
    codes = np.full((K // block, K), mid, np.uint8)
    for i in range(K // block):
        codes[i, i * block:(i + 1) * block] = mid + 1
    return codes


def group_containers(parts: list[Blocks]) -> list[Blocks]:
    """Consecutive parts that share a container are packed into one MatMulNBits; others stay separate."""
    groups: list[list[Blocks]] = []
    for p in parts:
        if groups and (groups[-1][-1].bits, groups[-1][-1].block) == (p.bits, p.block):
            groups[-1].append(p)
        else:
            groups.append([p])
    return [g[0] if len(g) == 1 else Blocks.concat_rows(g) for g in groups]
