"""Geometry of generated BPMN DI: columns by longest path, lanes as bands, orthogonal edge routes.

Pure Python, no XML: `layout.py` reads the document into `Pool`s and writes back what `arrange` returns.
Columns are longest-path ranks from the start events, ignoring back edges (found by a DFS from the start
events), so loops stay finite. Nodes of one lane and column stack in rows; a band grows to fit its rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from typing import NamedTuple

COL_W = 160  # one column per rank
ROW_H = 120  # one row per node stacked in the same lane and column
LABEL_W = 30  # pool name strip, then one lane name strip per nesting level
POOL_GAP = 50  # between stacked pools; message flows turn in the middle of it
ORIGIN_X, ORIGIN_Y = 100, 60
BLACK_BOX_H = 80  # participant without a process
CHANNEL = 12  # spacing of the back-edge channels under a band
BOUNDARY_PITCH = 40  # between boundary events on the bottom edge of one host

Box = tuple[int, int, int, int]  # x, y, width, height
Point = tuple[int, int]


class Flow(NamedTuple):
    id: str
    source: str
    target: str
    name: str = ""


@dataclass
class Node:
    id: str
    kind: str  # BPMN local name: userTask, boundaryEvent, exclusiveGateway...
    name: str = ""
    lane: str = ""  # leaf lane whose band holds the node; "" when the process has no lanes
    host: str = ""  # boundary events: the activity they sit on


@dataclass
class Lane:
    id: str
    depth: int
    leaves: list[str]  # leaf lanes covered, in order ([own id] for a leaf)


@dataclass
class Pool:
    participant: str
    nodes: list[Node] = field(default_factory=list)  # document order
    flows: list[Flow] = field(default_factory=list)  # sequence flows between known nodes
    lanes: list[Lane] = field(default_factory=list)  # pre-order; empty without a laneSet
    black_box: bool = False  # participant with no process: an empty pool


@dataclass
class Shape:
    element: str
    kind: str  # node kind, "participant" or "lane"
    box: Box
    label: Box | None = None


@dataclass
class Edge:
    element: str
    points: list[Point]
    label: Box | None = None


@dataclass
class _Placed:
    pool: Pool
    top: int
    height: int
    width: int
    bands: dict[str, tuple[int, int]]  # leaf lane -> (y, height)
    boxes: dict[str, Box]
    edges: list[Edge]
    labels: dict[str, Box]


def size_of(kind: str) -> tuple[int, int]:
    if kind.endswith("Event"):
        return 36, 36
    if kind.endswith("Gateway"):
        return 50, 50
    return 100, 80  # tasks of every kind, call activities, collapsed subprocesses


def arrange(pools: list[Pool], message_flows: list[Flow]) -> tuple[list[Shape], list[Edge]]:
    """Pools stacked top to bottom, all as wide as the widest; shapes are listed pools, lanes, then nodes."""
    placed: list[_Placed] = []
    top = ORIGIN_Y
    for pool in pools:
        placed.append(_place(pool, top))
        top += placed[-1].height + POOL_GAP
    width = max((p.width for p in placed), default=0)
    shapes: list[Shape] = []
    edges: list[Edge] = []
    pool_of: dict[str, Box] = {}
    boxes: dict[str, Box] = {}
    for p in placed:
        pool_box = (ORIGIN_X, p.top, width, p.height)
        shapes.append(Shape(p.pool.participant, "participant", pool_box))
        boxes[p.pool.participant] = pool_of[p.pool.participant] = pool_box
        for lane in p.pool.lanes:
            x, bands = ORIGIN_X + LABEL_W * (1 + lane.depth), [p.bands[leaf] for leaf in lane.leaves]
            shapes.append(Shape(lane.id, "lane", (x, bands[0][0], ORIGIN_X + width - x, sum(h for _, h in bands))))
    for p in placed:
        for node in p.pool.nodes:
            box = p.boxes[node.id]
            boxes[node.id], pool_of[node.id] = box, pool_of[p.pool.participant]
            shapes.append(Shape(node.id, node.kind, box, p.labels.get(node.id)))
        edges.extend(p.edges)
    for flow in message_flows:
        if flow.source in boxes and flow.target in boxes:
            points = _message_route(flow, boxes, pool_of)
            edges.append(Edge(flow.id, points, _edge_label(points, flow.name)))
    return shapes, edges


def _place(pool: Pool, top: int) -> _Placed:
    if pool.black_box:
        return _Placed(pool, top, BLACK_BOX_H, LABEL_W + 2 * COL_W, {}, {}, [], {})
    nodes = {n.id: n for n in pool.nodes}
    hosts = {n.id: n.host for n in pool.nodes
             if n.host in nodes and n.host != n.id and nodes[n.host].kind != "boundaryEvent"}
    succ: dict[str, list[tuple[str, int]]] = {n: [] for n in nodes}
    for flow in pool.flows:
        succ[flow.source].append((flow.target, 1))
    for boundary, host in hosts.items():
        succ[host].append((boundary, 0))  # same column as the host; its targets go to the next ones
    back = _back_edges(pool.nodes, succ)
    rank = _ranks(pool.nodes, succ, back)
    leaves = [lane.id for lane in pool.lanes if lane.leaves == [lane.id]] or [""]
    lane_of = {n.id: n.lane if n.lane in leaves else leaves[0] for n in pool.nodes}
    lane_of.update({b: lane_of[h] for b, h in hosts.items()})
    free = [n for n in pool.nodes if n.id not in hosts]
    row = _rows(free, pool.flows, lane_of, hosts, rank, back)
    channels: dict[str, list[str]] = {leaf: [] for leaf in leaves}
    back_flows = [f for f in pool.flows if (f.source, f.target) in back]
    for flow in back_flows:  # back edges run under the upper band of the two (the source's, from a boundary)
        band = lane_of[flow.source]
        if flow.source not in hosts and leaves.index(lane_of[flow.target]) < leaves.index(band):
            band = lane_of[flow.target]
        channels[band].append(flow.id)
    bands, rows_bottom, y = {}, {}, top
    for leaf in leaves:
        rows = max((row[n.id] + 1 for n in free if lane_of[n.id] == leaf), default=1)
        height = rows * ROW_H + (CHANNEL * (len(channels[leaf]) + 1) if channels[leaf] else 0)
        bands[leaf], rows_bottom[leaf] = (y, height), y + rows * ROW_H
        y += height
    levels = max((lane.depth + 1 for lane in pool.lanes), default=0)
    x0 = ORIGIN_X + LABEL_W * (1 + levels)
    boxes: dict[str, Box] = {}
    for n in free:
        w, h = size_of(n.kind)
        cx, cy = x0 + rank[n.id] * COL_W + COL_W // 2, bands[lane_of[n.id]][0] + ROW_H // 2 + row[n.id] * ROW_H
        boxes[n.id] = (cx - w // 2, cy - h // 2, w, h)
    attached: dict[str, list[str]] = {}
    for boundary, host in hosts.items():  # document order along the bottom edge
        attached.setdefault(host, []).append(boundary)
    for host, group in attached.items():
        hx, hy, hw, hh = boxes[host]
        for i, boundary in enumerate(group):
            cx = hx + hw // 2 + (2 * i - len(group) + 1) * BOUNDARY_PITCH // 2
            boxes[boundary] = (cx - 18, hy + hh - 18, 36, 36)
    channel_y = {fid: rows_bottom[band] + CHANNEL * (i + 1) for band, ids in channels.items()
                 for i, fid in enumerate(ids)}
    outs, ins = Counter(f.source for f in pool.flows), Counter(f.target for f in pool.flows)
    edges = []
    for flow in pool.flows:
        if flow.id in channel_y:
            points = _back_route(flow, boxes, hosts, channel_y[flow.id])
        else:
            skip = {flow.source, flow.target, hosts.get(flow.source, "")}
            obstacles = [box for nid, box in boxes.items() if nid not in skip]
            split = nodes[flow.source].kind.endswith("Gateway") and outs[flow.source] > 1
            join = nodes[flow.target].kind.endswith("Gateway") and ins[flow.target] > 1
            points = _forward_route(boxes[flow.source], boxes[flow.target], flow.source in hosts, split, join,
                                    obstacles)
        edges.append(Edge(flow.id, points, _edge_label(points, flow.name)))
    ends = {point for edge in edges for point in (edge.points[0], edge.points[-1])}
    labels = {n.id: _node_label(boxes[n.id], n.name, ends, n.id in hosts) for n in pool.nodes
              if n.name and n.kind.endswith(("Event", "Gateway"))}
    width = x0 - ORIGIN_X + max(2, max(rank.values(), default=0) + 1) * COL_W
    return _Placed(pool, top, y - top, width, bands, boxes, edges, labels)


def _back_edges(nodes: list[Node], succ: dict[str, list[tuple[str, int]]]) -> set[tuple[str, str]]:
    """Edges closing a cycle in a DFS from the start events (then from sources, then from anything left)."""
    has_pred = {t for outs in succ.values() for t, _ in outs}
    roots = ([n.id for n in nodes if n.kind == "startEvent"] + [n.id for n in nodes if n.id not in has_pred]
             + [n.id for n in nodes])
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    back: set[tuple[str, str]] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, todo = stack[-1]
            step = next(todo, None)
            if step is None:
                state[node] = 2
                stack.pop()
            elif state.get(step[0]) == 1:
                back.add((node, step[0]))
            elif step[0] not in state:
                state[step[0]] = 1
                stack.append((step[0], iter(succ[step[0]])))
    return back


def _ranks(nodes: list[Node], succ: dict[str, list[tuple[str, int]]], back: set[tuple[str, str]]) -> dict[str, int]:
    """Longest-path rank over the forward edges (Kahn's order: the graph without back edges is acyclic)."""
    indegree = {n.id: 0 for n in nodes}
    for source, outs in succ.items():
        for target, _ in outs:
            indegree[target] += (source, target) not in back
    rank = dict.fromkeys(indegree, 0)
    queue = [n for n, d in indegree.items() if d == 0]
    for source in queue:
        for target, weight in succ[source]:
            if (source, target) not in back:
                rank[target] = max(rank[target], rank[source] + weight)
                indegree[target] -= 1
                if indegree[target] == 0:
                    queue.append(target)
    return rank


def _rows(free: list[Node], flows: list[Flow], lane_of: dict[str, str], hosts: dict[str, str],
          rank: dict[str, int], back: set[tuple[str, str]]) -> dict[str, int]:
    """Row within lane and column: a node wants its same-lane predecessor's row (one lower after a boundary).

    Among equals, the first written flow keeps the straight line; nodes that loop back go below.
    """
    preds: dict[str, list[str]] = {n.id: [] for n in free}
    entry: dict[str, int] = {}
    for index, flow in enumerate(flows):
        if flow.target in preds and (flow.source, flow.target) not in back:
            preds[flow.target].append(flow.source)
            entry.setdefault(flow.target, index)
    loops = {source for source, _ in back}
    row: dict[str, int] = {}
    for _, column in groupby(sorted(free, key=lambda n: rank[n.id]), key=lambda n: rank[n.id]):
        wanted = {}
        for n in column:
            wants = [row[hosts[p]] + 1 if p in hosts else row[p] for p in preds[n.id]
                     if lane_of[p] == lane_of[n.id] and hosts.get(p, p) in row]
            wanted[n.id] = min(wants, default=0)
        last: dict[str, int] = {}
        for nid in sorted(wanted, key=lambda i: (wanted[i], i in loops, entry.get(i, len(flows)))):
            row[nid] = last[lane_of[nid]] = max(wanted[nid], last.get(lane_of[nid], -1) + 1)
    return row


def _mid(box: Box) -> Point:
    return box[0] + box[2] // 2, box[1] + box[3] // 2


def _forward_route(s: Box, t: Box, from_boundary: bool, split: bool, join: bool,
                   obstacles: list[Box]) -> list[Point]:
    """First candidate route crossing no other shape (else the preferred one).

    Splitting gateways fan out from their top/bottom, joining gateways collect into their top/bottom.
    """
    (sx, sy), (tx, ty) = _mid(s), _mid(t)
    right, left, s_bottom, t_bottom = s[0] + s[2], t[0], s[1] + s[3], t[1] + t[3]
    candidates: list[list[Point]] = []
    if from_boundary:  # leave the bottom of the boundary event
        if ty >= s_bottom:
            candidates.append([(sx, s_bottom), (sx, ty), (left, ty)])
        gap, drop = tx - COL_W // 2, s_bottom + CHANNEL
        candidates.append([(sx, s_bottom), (sx, drop), (gap, drop), (gap, ty), (left, ty)])
    elif sy == ty:
        candidates.append([(right, sy), (left, ty)])
    else:
        if split:  # leave upward or downward
            candidates.append([(sx, s_bottom if ty > sy else s[1]), (sx, ty), (left, ty)])
        if join:  # enter from above or below
            candidates.append([(right, sy), (tx, sy), (tx, t[1] if ty > sy else t_bottom)])
        for gap in (sx + COL_W // 2, tx - COL_W // 2):
            candidates.append([(right, sy), (gap, sy), (gap, ty), (left, ty)])
    detour = max(sy, ty) + ROW_H // 2  # between this row and the next one
    candidates.append([(sx, s_bottom), (sx, detour), (tx, detour), (tx, t_bottom)])
    for points in candidates:
        if not any(_crosses(a, b, box) for a, b in zip(points, points[1:], strict=False) for box in obstacles):
            return _clean(points)
    return _clean(candidates[0])


def _back_route(flow: Flow, boxes: dict[str, Box], hosts: dict[str, str], channel: int) -> list[Point]:
    """Loop back: leave the source toward the channel under the band, run left, enter the target from it."""
    s, t = boxes[flow.source], boxes[flow.target]
    (sx, _), (tx, _) = _mid(s), _mid(t)
    if flow.source == flow.target:
        sx += s[2] // 4
    if flow.target in (flow.source, hosts.get(flow.source)):
        tx = t[0] + 10
    sy = s[1] + s[3] if channel >= s[1] + s[3] else s[1]
    ty = t[1] + t[3] if channel >= t[1] + t[3] else t[1]
    return _clean([(sx, sy), (sx, channel), (tx, channel), (tx, ty)])


def _message_route(flow: Flow, boxes: dict[str, Box], pool_of: dict[str, Box]) -> list[Point]:
    """Vertical from pool to pool, turning in the gap under (or over) the source's pool."""
    s, t, s_pool, t_pool = boxes[flow.source], boxes[flow.target], pool_of[flow.source], pool_of[flow.target]
    (sx, sy), (tx, ty) = _mid(s), _mid(t)
    if s == s_pool and t != t_pool:
        sx = tx
    elif t == t_pool and s != s_pool:
        tx = sx
    down = (t_pool[1], ty) > (s_pool[1], sy)
    start, end = (s[1] + s[3], t[1]) if down else (s[1], t[1] + t[3])
    if s_pool == t_pool:
        turn = (start + end) // 2
    else:
        turn = s_pool[1] + s_pool[3] + POOL_GAP // 2 if down else s_pool[1] - POOL_GAP // 2
    return _clean([(sx, start), (sx, turn), (tx, turn), (tx, end)])


def _crosses(a: Point, b: Point, box: Box) -> bool:
    x0, x1, y0, y1 = min(a[0], b[0]), max(a[0], b[0]), min(a[1], b[1]), max(a[1], b[1])
    return x0 < box[0] + box[2] and x1 > box[0] and y0 < box[1] + box[3] and y1 > box[1]


def _clean(points: list[Point]) -> list[Point]:
    """Drop repeated points and the middle of straight runs."""
    out: list[Point] = []
    for p in points:
        if out and p == out[-1]:
            continue
        if len(out) >= 2 and (out[-2][0] == out[-1][0] == p[0] or out[-2][1] == out[-1][1] == p[1]):
            out[-1] = p
        else:
            out.append(p)
    return out if len(out) >= 2 else [points[0], points[-1]]


def _text_box(name: str) -> tuple[int, int]:
    """Approximate size of a wrapped 11 px label (about 6 px per character, 90 px wide at most)."""
    chars = len(" ".join(name.split()))
    return min(90, 6 * chars + 10), 14 * max(1, -(-6 * chars // 84))


def _node_label(box: Box, name: str, ends: set[Point], hosted: bool) -> Box:
    """Under the shape, else above it, else beside its lower right: away from flows ending on top/bottom."""
    (x, y, w, h), (lw, lh) = box, _text_box(name)
    if (x + w // 2, y + h) not in ends:
        return x + w // 2 - lw // 2, y + h + 7, lw, lh
    if (x + w // 2, y) not in ends and not hosted:
        return x + w // 2 - lw // 2, y - 7 - lh, lw, lh
    return x + w + 4, y + h + 2, lw, lh


def _edge_label(points: list[Point], name: str) -> Box | None:
    """Next to where the flow starts (conditions read beside their gateway): above it, or right of it."""
    if not name:
        return None
    (ax, ay), (bx, by) = points[0], points[1]
    w, h = _text_box(name)
    if ay == by:
        return (ax + 6 if bx > ax else ax - 6 - w), ay - h - 4, w, h
    return ax + 6, (ay + 6 if by > ay else ay - 6 - h), w, h
