"""Figures read from a compiled program's optimised HLO text, loops counted.

XLA's `cost_analysis()` visits a while loop's body once, so a model scanned over
its layers (or a step scanned over microbatches) reports one layer's FLOPs. This
module walks the per-device HLO module the compiler produced (`compiled.as_text()`)
and multiplies each loop body by its trip count, for:

  * FLOPs of every dot and convolution (2 per multiply-add; padding taps of the
    convolutions XLA uses to express batched matmuls are not counted, as
    HloCostAnalysis does not count them);
  * collectives: count and bytes per step by kind (all-gather, reduce-scatter,
    all-reduce, all-to-all, collective-permute), with the ring traffic each implies;
  * bytes read and written by top-level instructions (fusions read their operands
    from and write their result to HBM): the memory term of a roofline.

A Pallas kernel (a `tpu_custom_call`) is opaque to both counts: it is priced by the
`cost_estimate` its `pallas_call` attaches (flops, and the HBM bytes its pipeline moves),
which the compiler keeps in the call's backend config; a kernel without one counts its
operands and result once and no FLOPs.

Trip counts come from the loop condition `counter < N` (or `N > counter`), with the
counter's initial value and increment read from the loop's operand and body; a loop
whose count cannot be read counts once and is reported in `unknown_loops`.
"""
from __future__ import annotations

import dataclasses
import math
import re

DTYPE_BYTES = {"pred": 1, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1,
               "f8e4m3b11fnuz": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
               "f64": 8, "s64": 8, "u64": 8, "c64": 8, "c128": 16, "token": 0}
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_ARRAY = re.compile(r"\b([a-z]+[0-9]*[a-z0-9]*)\[([0-9,]*)\](\{[^}]*\})?")
_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*\(.*\{\s*$")
_NAME = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*")
# Instructions that move no data of their own.
_FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "while", "call", "conditional",
         "after-all", "partition-id", "replica-id", "iota", "copy-done", "slice-done", "opt-barrier",
         "add-dependency", "domain"}


@dataclasses.dataclass
class Instr:
  name: str
  type: str       # result type text, e.g. 'bf16[8,128]{1,0}' or a tuple '(f32[], s32[4])'
  opcode: str
  operands: list[str]
  attrs: str      # everything after the operand list
  is_root: bool
  args: str = ""  # the text inside the operand list (a constant's literal)


def shapes(type_text: str) -> list[tuple[str, tuple[int, ...]]]:
  """[(dtype, dims)] of an array or tuple type."""
  return [(dt, tuple(int(d) for d in dims.split(",") if d)) for dt, dims, _ in _ARRAY.findall(type_text)
          if dt in DTYPE_BYTES]


def type_bytes(type_text: str, hbm_only: bool = False) -> float:
  """Bytes of an array or tuple type; `hbm_only` skips arrays the layout places in another
  memory space (`S(n)`: on-chip VMEM/CMEM, scalar memory), which cost no HBM traffic."""
  return sum(DTYPE_BYTES[dt] * math.prod(int(d) for d in dims.split(",") if d)
             for dt, dims, layout in _ARRAY.findall(type_text)
             if dt in DTYPE_BYTES and not (hbm_only and re.search(r"S\([1-9]\d*\)", layout)))


def tuple_elements(type_text: str) -> list[str]:
  """Top-level element types of a tuple type ('(a, (b, c))' -> ['a', '(b, c)']); [type] otherwise."""
  if not type_text.startswith("("):
    return [type_text]
  parts, depth, start = [], 0, 1
  for i, c in enumerate(type_text):
    if c in "([{":
      depth += 1
    elif c in ")]}":
      depth -= 1
    if (c == "," and depth == 1) or (depth == 0 and c == ")"):
      part = re.sub(r"/\*index=\d+\*/", "", type_text[start:i]).strip()
      if part:
        parts.append(part)
      start = i + 1
  return parts


def _split_type(rest: str) -> tuple[str, str]:
  """'(a, b) op(...)' or 'bf16[2]{0} op(...)' -> (type text, remainder)."""
  if rest.startswith("("):
    depth = 0
    for i, c in enumerate(rest):
      depth += c == "("
      depth -= c == ")"
      if depth == 0:
        return rest[:i + 1], rest[i + 1:].lstrip()
  i = rest.find(" ")
  return rest[:i], rest[i + 1:]


def _parse_instr(line: str) -> Instr | None:
  m = _NAME.match(line)
  if not m:
    return None
  rest = line[m.end():]
  type_text, rest = _split_type(rest)
  op = re.match(r"([\w\-]+)\(", rest)
  if not op:
    return None
  depth, start = 0, op.end() - 1
  for i in range(start, len(rest)):
    depth += rest[i] == "("
    depth -= rest[i] == ")"
    if depth == 0:
      break
  args = rest[start + 1:i]
  operands = re.findall(r"%([\w.\-]+)", args)
  return Instr(m.group(1), type_text, op.group(1), operands, rest[i + 1:], line.lstrip().startswith("ROOT"), args)


def parse_module(text: str) -> tuple[dict[str, list[Instr]], str]:
  """{computation name: instructions}, and the entry computation's name."""
  comps: dict[str, list[Instr]] = {}
  entry, current = "", None
  for line in text.splitlines():
    if current is None:
      m = _HEADER.match(line)
      if m:
        current = m.group(2)
        comps[current] = []
        if m.group(1):
          entry = current
      continue
    if line.strip() == "}":
      current = None
      continue
    ins = _parse_instr(line)
    if ins is not None:
      comps[current].append(ins)
  return comps, entry


def _attr_comp(attrs: str, key: str) -> str | None:
  m = re.search(key + r"=%?([\w.\-]+)", attrs)
  return m.group(1) if m else None


def _group_size(attrs: str, num_devices: int) -> int:
  """Participants per replica group of a collective."""
  m = re.search(r"replica_groups=\[(\d+),(\d+)\]<=", attrs)  # iota form: [groups, size]<=[...]
  if m:
    return int(m.group(2))
  m = re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", attrs)  # mesh form: mesh[axes] {used}
  if m:
    sizes = dict(re.findall(r"'([^']+)'=(\d+)", m.group(1)))
    return math.prod(int(sizes[a]) for a in re.findall(r"'([^']+)'", m.group(2)) if a in sizes) or 1
  m = re.search(r"replica_groups=\{\{([^}]*)\}", attrs)
  if m:
    return len([x for x in m.group(1).split(",") if x.strip()])
  m = re.search(r"source_target_pairs=\{([^}]*)\}", attrs)
  if m:
    return 2
  return num_devices


@dataclasses.dataclass
class Collective:
  count: float = 0.0
  bytes: float = 0.0    # per device: result size (operand size for reduce-scatter)
  traffic: float = 0.0  # per device: bytes sent on ring algorithms


@dataclasses.dataclass
class HloStats:
  flops: float = 0.0           # per device, loops multiplied out
  bytes_accessed: float = 0.0  # per device, top-level operands + results
  collectives: dict[str, Collective] = dataclasses.field(
      default_factory=lambda: {k: Collective() for k in COLLECTIVES})
  loops: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (op_name, trips) of outer loops
  unknown_loops: int = 0
  # bytes_accessed by the source operation that XLA records (layers_N folded): what the HBM
  # time of the roofline is spent on.
  traffic_by_source: dict[str, float] = dataclasses.field(default_factory=dict)
  kernels: float = 0  # custom-call kernels priced by their cost estimate, loops multiplied out

  def top_traffic(self, n: int = 5) -> list[tuple[str, float]]:
    return sorted(self.traffic_by_source.items(), key=lambda kv: -kv[1])[:n]

  @property
  def collective_bytes(self) -> float:
    return sum(c.bytes for c in self.collectives.values())

  @property
  def collective_traffic(self) -> float:
    return sum(c.traffic for c in self.collectives.values())


class _Walker:
  def __init__(self, text: str, num_devices: int):
    self.comps, self.entry = parse_module(text)
    self.types = {i.name: i.type for ins in self.comps.values() for i in ins}
    self.by_name = {i.name: i for ins in self.comps.values() for i in ins}
    self.num_devices = num_devices
    self.stats = HloStats()
    self._flops_cache: dict[str, float] = {}

  # -- loop trip counts ----------------------------------------------------------------

  def _unwrap(self, ins: Instr | None) -> Instr | None:
    """A fusion wrapping one scalar op (as the CPU backend emits) -> that op on the fusion's operands."""
    if ins is None or ins.opcode != "fusion":
      return ins
    fused = self.comps.get(_attr_comp(ins.attrs, "calls") or "", [])
    root = next((i for i in fused if i.is_root), None)
    if root is None or root.opcode in ("fusion", "parameter"):
      return ins
    params = {i.name: int(i.args) for i in fused if i.opcode == "parameter" and i.args.strip().isdigit()}
    if not all(o in params for o in root.operands):
      return ins
    return dataclasses.replace(root, operands=[ins.operands[params[o]] for o in root.operands])

  def trip_count(self, loop: Instr) -> int | None:
    known = re.search(r'"known_trip_count":\{"n":"(\d+)"', loop.attrs)
    if known:
      return int(known.group(1))
    cond = self.comps.get(_attr_comp(loop.attrs, "condition") or "")
    body = self.comps.get(_attr_comp(loop.attrs, "body") or "")
    if not cond or not body:
      return None
    root = self._unwrap(next((i for i in cond if i.is_root), None))
    if root is None or root.opcode != "compare" or len(root.operands) != 2:
      return None
    direction = re.search(r"direction=(\w+)", root.attrs)
    direction = direction.group(1) if direction else "LT"
    a, b = (self.by_name.get(o) for o in root.operands)
    index, bound = None, None
    for counter, limit, flip in ((a, b, False), (b, a, True)):
      if counter is not None and counter.opcode == "get-tuple-element" and limit is not None:
        n = self._literal(limit)
        if n is not None:
          index, bound = int(re.search(r"index=(\d+)", counter.attrs).group(1)), n
          if flip:
            direction = {"GT": "LT", "GE": "LE", "LT": "GT", "LE": "GE"}.get(direction, direction)
          break
    if index is None or direction not in ("LT", "LE"):
      return None
    init = 0
    tup = self.by_name.get(loop.operands[0]) if loop.operands else None
    if tup is not None and tup.opcode == "tuple" and index < len(tup.operands):
      v = self._literal(self.by_name.get(tup.operands[index]))
      init = v if v is not None else 0
    step = 1
    body_root = next((i for i in body if i.is_root), None)
    if body_root is not None and body_root.opcode == "tuple" and index < len(body_root.operands):
      upd = self._unwrap(self.by_name.get(body_root.operands[index]))
      if upd is not None and upd.opcode == "add":
        for o in upd.operands:
          v = self._literal(self.by_name.get(o))
          if v is not None and v > 0:
            step = v
    span = bound - init + (1 if direction == "LE" else 0)
    return max(0, -(-span // step))

  def _literal(self, ins: Instr | None) -> int | None:
    while ins is not None and ins.opcode in ("copy", "convert", "bitcast", "reshape", "broadcast") and ins.operands:
      ins = self.by_name.get(ins.operands[0])
    if ins is None or ins.opcode != "constant":
      return None
    return int(ins.args) if re.fullmatch(r"-?\d+", ins.args.strip()) else None

  # -- FLOPs ---------------------------------------------------------------------------

  def _dims(self, name: str) -> tuple[int, ...]:
    s = shapes(self.types.get(name, ""))
    return s[0][1] if s else ()

  def dot_flops(self, ins: Instr) -> float:
    out = shapes(ins.type)
    if not out or not ins.operands:
      return 0.0
    lhs = self._dims(ins.operands[0])
    m = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", ins.attrs)
    contract = [int(d) for d in m.group(1).split(",") if d] if m else []
    k = math.prod(lhs[d] for d in contract if d < len(lhs))
    return 2.0 * math.prod(out[0][1]) * k

  def conv_flops(self, ins: Instr) -> float:
    out = shapes(ins.type)
    m = re.search(r"dim_labels=(\w+)_(\w+)->(\w+)", ins.attrs)
    if not out or len(ins.operands) < 2 or not m:
      return 0.0
    lhs, rhs, outd = self._dims(ins.operands[0]), self._dims(ins.operands[1]), out[0][1]
    lhs_l, rhs_l, out_l = m.groups()
    if not (len(lhs_l) == len(lhs) and len(rhs_l) == len(rhs) and len(out_l) == len(outd)):
      return 0.0
    window = re.search(r"window=\{([^}]*)\}", ins.attrs)
    wtext = window.group(1) if window else ""

    def field(key: str, n: int, default: list[int]) -> list:
      mm = re.search(key + r"=([0-9x_]+)", wtext)
      if not mm:
        return default
      return [tuple(int(v) for v in p.split("_")) if "_" in p else int(p) for p in mm.group(1).split("x")]

    spatial = sorted(int(c) for c in lhs_l if c.isdigit())
    n = len(spatial)
    sizes = field("size", n, [rhs[rhs_l.index(str(d))] for d in spatial])
    strides = field("stride", n, [1] * n)
    pads = field("pad", n, [(0, 0)] * n)
    lhs_dil = field("lhs_dilate", n, [1] * n)
    rhs_dil = field("rhs_dilate", n, [1] * n)
    valid = 1
    for j, d in enumerate(spatial):
      in_size, out_size = lhs[lhs_l.index(str(d))], outd[out_l.index(str(d))]
      dilated_in = (in_size - 1) * lhs_dil[j] + 1
      count = 0
      for o in range(out_size):
        for kk in range(sizes[j]):
          pos = o * strides[j] + kk * rhs_dil[j] - pads[j][0]
          if 0 <= pos < dilated_in and pos % lhs_dil[j] == 0:
            count += 1
      valid *= count
    batch = outd[out_l.index("b")]
    out_feat = outd[out_l.index("f")]
    in_feat = rhs[rhs_l.index("i")]
    return 2.0 * batch * out_feat * in_feat * valid

  def computation_flops(self, comp: str) -> float:
    """FLOPs of one execution of a computation, nested loops and calls included."""
    if comp in self._flops_cache:
      return self._flops_cache[comp]
    self._flops_cache[comp] = 0.0  # guards recursion
    total = 0.0
    for ins in self.comps.get(comp, ()):
      if (cost := kernel_cost(ins)) is not None:
        total += cost[0]
      elif ins.opcode == "dot":
        total += self.dot_flops(ins)
      elif ins.opcode == "convolution":
        total += self.conv_flops(ins)
      elif ins.opcode == "while":
        trips = self.trip_count(ins)
        total += (trips if trips is not None else 1) * self.computation_flops(_attr_comp(ins.attrs, "body"))
      elif ins.opcode in ("fusion", "call", "async-start", "custom-call"):
        for key in ("calls", "to_apply"):
          sub = _attr_comp(ins.attrs, key)
          if sub and (ins.opcode != "custom-call" or key == "calls"):
            total += self.computation_flops(sub)
      elif ins.opcode == "conditional":
        branches = re.findall(r"%([\w.\-]+)", (re.search(r"branch_computations=\{([^}]*)\}", ins.attrs)
                                               or re.search(r"(true_computation=\S+ false_computation=\S+)",
                                                            ins.attrs) or [None, ""])[1])
        total += max((self.computation_flops(b) for b in branches), default=0.0)
    self._flops_cache[comp] = total
    return total

  # -- collectives and memory traffic (top-level instructions) ----------------------------

  def walk(self, comp: str, times: float, depth: int = 0) -> None:
    for ins in self.comps.get(comp, ()):
      op = ins.opcode
      base = op[:-6] if op.endswith("-start") else op
      if op == "while":
        trips = self.trip_count(ins)
        if trips is None:
          self.stats.unknown_loops += 1
          trips = 1
        if depth == 0:
          name = re.search(r'op_name="([^"]*)"', ins.attrs)
          self.stats.loops.append((name.group(1) if name else ins.name, trips))
        self.walk(_attr_comp(ins.attrs, "body"), times * trips, depth + 1)
        continue
      if op in ("call", "conditional"):
        for sub in re.findall(r"(?:to_apply|branch_computations=\{|true_computation|false_computation)"
                              r"=?%([\w.\-]+)", ins.attrs):
          self.walk(sub, times, depth)
        continue
      if base in COLLECTIVES and not op.endswith("-done"):
        self._collective(base, ins, times)
      if op in _FREE or op.endswith("-done"):
        continue
      cost = kernel_cost(ins)
      if cost is not None:
        self.stats.kernels += times
      b = times * (cost[1] if cost is not None else self.instr_bytes(ins))
      self.stats.bytes_accessed += b
      src = _source(ins)
      self.stats.traffic_by_source[src] = self.stats.traffic_by_source.get(src, 0.0) + b

  def instr_bytes(self, ins: Instr) -> float:
    """HBM bytes an instruction reads and writes. Slices read only what they keep; an
    in-place dynamic-update-slice writes only its update (as HloCostAnalysis counts)."""
    if ins.opcode in ("slice-start", "copy-start") and ins.type.startswith("("):
      # An async copy or slice: ((operand), result, context). It reads from HBM what it
      # keeps (a slice: only the slice) and writes its result, to HBM only where the result's
      # layout does not place it on chip (S(n)).
      result = tuple_elements(ins.type)[1]
      source = self.types.get(ins.operands[0], "") if ins.operands else ""
      kept = type_bytes(result) if ins.opcode == "slice-start" else type_bytes(source)
      read = kept if type_bytes(source, True) > 0 else 0.0
      return read + type_bytes(result, True)
    if ins.opcode in ("dynamic-slice", "slice", "gather"):
      return 2 * type_bytes(ins.type, True)
    if ins.opcode == "dynamic-update-slice" and len(ins.operands) > 1:
      return 2 * type_bytes(self.types.get(ins.operands[1], ""), True)
    out = type_bytes(ins.type, True)
    operands = [type_bytes(self.types.get(o, ""), True) for o in ins.operands]
    fused = self.comps.get(_attr_comp(ins.attrs, "calls") or "") if ins.opcode == "fusion" else None
    if fused:
      users: dict[str, list[Instr]] = {}
      for f in fused:
        for o in f.operands:
          users.setdefault(o, []).append(f)
      for f in fused:
        if f.opcode != "parameter":
          continue
        idx = int(f.args) if f.args.strip().isdigit() else -1
        us = users.get(f.name, [])
        if 0 <= idx < len(operands) and us and all(u.opcode in ("dynamic-slice", "slice", "gather") for u in us):
          operands[idx] = sum(type_bytes(u.type, True) for u in us)
        elif 0 <= idx < len(operands) and us and all(u.opcode == "dynamic-update-slice" and u.operands[0] == f.name
                                                     for u in us):
          operands[idx] = 0.0
          out = sum(type_bytes(self.types.get(u.operands[1], ""), True) for u in us)
    return out + sum(operands)

  def _collective(self, kind: str, ins: Instr, times: float) -> None:
    n = _group_size(ins.attrs, self.num_devices)
    out = type_bytes(ins.type)
    if ins.opcode.endswith("-start") and ins.type.startswith("("):
      # an async start returns (operands, results, context...): count the results
      parts = tuple_elements(ins.type)
      out = type_bytes(parts[1]) if len(parts) > 1 else out
    operand = sum(type_bytes(self.types.get(o, "")) for o in ins.operands)
    size = operand if kind == "reduce-scatter" else out
    frac = (n - 1) / n if n > 1 else 0.0
    traffic = {"all-gather": out * frac, "reduce-scatter": operand * frac, "all-reduce": 2 * out * frac,
               "all-to-all": out * frac, "collective-permute": out}[kind]
    c = self.stats.collectives[kind]
    c.count += times
    c.bytes += times * size
    c.traffic += times * traffic


def _source(ins: "Instr") -> str:
  """A short name of the model operation an instruction comes from: the tail of its op_name
  metadata (layers_N folded, jit/jvp/transpose wrappers dropped) and whether it belongs to
  the backward pass; the opcode when XLA kept no metadata (its own copies, async slices)."""
  m = re.search(r'op_name="([^"]*)"', ins.attrs)
  if not m:
    return f"({ins.opcode})"
  name = re.sub(r"layers_\d+", "layers_N", m.group(1))
  backward = "transpose(" in name
  parts = [p for p in name.split("/") if p and not re.match(r"^(jit|jvp|transpose|closed_call|checkpoint|while|body|"
                                                             r"rematted_computation)\b", p)]
  return "/".join(parts[-4:]) + (" (backward)" if backward else "")


_COST = re.compile(r'cost_estimate\\?"\s*:\s*\{([^}]*)\}')


def kernel_cost(ins: "Instr") -> tuple[float, float] | None:
  """(flops, bytes accessed) of a custom call's attached cost estimate, or None."""
  if ins.opcode != "custom-call":
    return None
  m = _COST.search(ins.attrs)
  if not m:
    return None
  value = lambda key: re.search(key + r'\\?"\s*:\s*\\?"?([0-9.e+]+)', m.group(1))
  flops, nbytes = value("flops"), value("bytes_accessed")
  return (float(flops.group(1)) if flops else 0.0, float(nbytes.group(1)) if nbytes else 0.0)


def analyse(hlo_text: str, num_devices: int) -> HloStats:
  """Per-device FLOPs, collectives and memory traffic of one execution of the module."""
  w = _Walker(hlo_text, num_devices)
  w.stats.flops = w.computation_flops(w.entry)
  w.walk(w.entry, 1.0)
  return w.stats
