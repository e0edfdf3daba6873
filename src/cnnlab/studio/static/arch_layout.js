// The architecture diagram's layout: which units show (rows and folded blocks), in which lane and
// rank, and where. Pure functions of the server's diagram data (/api/architecture/model/NAME) and
// the set of opened blocks; arch_draw.js turns the result into SVG.
//
// A unit is one row of the analyzer (a volume), or a folded block. A batch norm, activation or
// dropout that follows its volume directly is drawn as a tag of that volume, not as a unit.
// Ranks are the longest path from the input, so parallel branches share ranks; lanes keep a
// branch in one column: a unit continues the lane of a source whose flow nothing has continued
// yet, else it opens the lowest free lane (an inception module's branches, a projection shortcut).

export const ATTACHED = new Set(["norm", "act", "dropout"]);
const LANE_GAP = 36;
const RANK_GAP = 26;
const FRAME_HEAD = 22; // room for an opened block's title above its first rank
const MIN_LANE = 210;

/** Side of a box face for a spatial size or a channel count, on a compressed (log) scale. */
export const face = (v) => 4 + 9 * Math.log2(1 + v);
export const depth = (c) => 3 + 5 * Math.log2(1 + c);

/** The innermost block of each row (or -1). */
function innermost(data) {
  const inner = new Array(data.rows.length).fill(-1);
  data.blocks.forEach((b, k) => {
    for (let i = b.first; i <= b.last; i++) inner[i] = k; // outer blocks come first: inner wins
  });
  return inner;
}

/** A block's ancestors, outermost first, then itself. */
export function chain(data, k) {
  const out = [];
  for (let b = k; b !== null && b !== undefined && b >= 0; b = data.blocks[b].parent) out.unshift(b);
  return out;
}

/** Each block's depth of nesting (0: a top-level block). */
export function blockDepth(data, k) {
  return chain(data, k).length - 1;
}

/** Size of a unit's glyph (the box) and of its label. */
export function glyph(unit, data) {
  if (unit.block !== undefined) return { w: 0, h: 0 };
  const row = data.rows[unit.row];
  const s = row.output_shape;
  if (row.kind === "elementwise" || row.kind === "cat") return { w: 26, h: 26 };
  if (s.length === 3) {
    const d = depth(s[0]);
    return { w: face(s[2]) + 0.7 * d, h: face(s[1]) + 0.45 * d, box: [face(s[2]), face(s[1]), d] };
  }
  if (s.length === 1) return { w: 10, h: Math.min(face(s[0]) * 1.2, 150), bar: true };
  return { w: 20, h: 20 };
}

/** The units shown when `open` holds the opened blocks. */
export function units(data, open) {
  const inner = innermost(data);
  const list = [];
  const unitOf = new Array(data.rows.length);
  data.rows.forEach((row, i) => {
    const closed = inner[i] < 0 ? undefined : chain(data, inner[i]).find((k) => !open.has(k));
    const last = list[list.length - 1];
    if (closed !== undefined) {
      if (last && last.block === closed) last.rows.push(i);
      else list.push({ block: closed, rows: [i], tags: [] });
    } else if (
      last && last.block === undefined && ATTACHED.has(row.kind) &&
      row.sources.length === 1 && row.sources[0] === i - 1 && last.rows[last.rows.length - 1] === i - 1 &&
      data.rows[last.row].kind !== "input" && inner[i] === inner[last.row]
    ) {
      last.rows.push(i);
      last.tags.push(i);
    } else {
      list.push({ row: i, rows: [i], tags: [] });
    }
    unitOf[i] = list.length - 1;
  });
  list.forEach((u, n) => {
    const from = [];
    for (const i of u.rows) for (const s of data.rows[i].sources) {
      const v = unitOf[s];
      if (v !== n && !from.includes(v)) from.push(v);
    }
    u.from = from;
    u.id = n;
  });
  return { list, unitOf };
}

/** Label lines of a unit (what arch_draw.js writes beside its box). */
export function labelWidth(lines) {
  return Math.max(...lines.map((t) => t.length)) * 6.4 + 8;
}

/**
 * Ranks, lanes and coordinates. `lines(unit)` gives the unit's label lines (to size it).
 * Returns {list, unitOf, width, height, frames} with x, y, w, h on each unit.
 */
export function place(data, open, lines) {
  const { list, unitOf } = units(data, open);
  const heads = []; // lane -> {unit, continued, rank}
  for (const u of list) {
    u.rank = u.from.length ? Math.max(...u.from.map((v) => list[v].rank + 1)) : 0;
    const free = heads
      .map((h, lane) => ({ h, lane }))
      .filter(({ h }) => u.from.includes(h.unit) && !h.continued)
      .map(({ lane }) => lane);
    let lane = free.length ? Math.min(...free) : -1;
    if (lane < 0) {
      lane = heads.findIndex((h) => h.continued && h.rank < u.rank);
      if (lane < 0) lane = heads.length;
    }
    heads.forEach((h) => { if (u.from.includes(h.unit)) h.continued = true; });
    heads[lane] = { unit: u.id, continued: false, rank: u.rank };
    u.lane = lane;
    const g = glyph(u, data);
    u.glyph = g;
    const text = lines(u);
    u.w = u.block !== undefined ? Math.max(200, labelWidth(text) + 16) : g.w + 10 + labelWidth(text);
    u.h = u.block !== undefined ? 16 + 14 * text.length : Math.max(g.h, 14 * text.length + 4);
  }
  const lanes = heads.length;
  const laneW = new Array(lanes).fill(MIN_LANE);
  const ranks = Math.max(0, ...list.map((u) => u.rank)) + 1;
  const rankH = new Array(ranks).fill(0);
  for (const u of list) {
    laneW[u.lane] = Math.max(laneW[u.lane], u.w);
    rankH[u.rank] = Math.max(rankH[u.rank], u.h);
  }
  // Opened blocks get a title band above their first rank, one per nesting level.
  const frames = [];
  const headRoom = new Array(ranks).fill(0);
  for (const k of open) {
    if (!chain(data, k).every((b) => open.has(b))) continue; // inside a folded block: hidden
    const b = data.blocks[k];
    const inside = list.filter((u) => u.rows[0] >= b.first && u.rows[u.rows.length - 1] <= b.last);
    if (!inside.length) continue;
    const top = Math.min(...inside.map((u) => u.rank));
    headRoom[top] += FRAME_HEAD;
    frames.push({ block: k, inside, top });
  }
  const laneX = [];
  let x = 44; // room on the left for shortcut arcs
  for (let l = 0; l < lanes; l++) { laneX.push(x); x += laneW[l] + LANE_GAP; }
  const rankY = [];
  let y = 12;
  for (let r = 0; r < ranks; r++) { y += headRoom[r]; rankY.push(y); y += rankH[r] + RANK_GAP; }
  for (const u of list) { u.x = laneX[u.lane]; u.y = rankY[u.rank]; }
  for (const f of frames) {
    const depthOf = blockDepth(data, f.block);
    const pad = 10 - Math.min(depthOf, 4) * 2;
    const x0 = Math.min(...f.inside.map((u) => u.x)) - pad - 14;
    const x1 = Math.max(...f.inside.map((u) => u.x + u.w)) + pad;
    const y0 = rankY[f.top] - FRAME_HEAD * (1 + frames.filter((g) => g.top === f.top && blockDepth(data, g.block) > depthOf).length) + 2;
    const y1 = Math.max(...f.inside.map((u) => u.y + u.h)) + pad;
    Object.assign(f, { x: x0, y: y0, w: x1 - x0, h: y1 - y0, depth: depthOf });
  }
  return { list, unitOf, frames, width: x + 20, height: y + 10 };
}

/**
 * Which blocks to open at first: breadth first, outer blocks before inner, while the diagram
 * stays under `budget` units (so AlexNet opens whole and ResNet-152 shows its stages folded).
 */
export function initialOpen(data, budget = 48) {
  const open = new Set();
  let count = units(data, open).list.length;
  const byDepth = data.blocks.map((b, k) => k).sort((a, b) => blockDepth(data, a) - blockDepth(data, b) || a - b);
  for (const k of byDepth) {
    if (!chain(data, k).slice(0, -1).every((b) => open.has(b))) continue;
    open.add(k);
    const n = units(data, open).list.length;
    if (n > budget) open.delete(k);
    else count = n;
  }
  return open;
}
