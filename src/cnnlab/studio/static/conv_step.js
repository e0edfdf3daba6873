// The conv lab's JavaScript twin of one output cell: which input pixels the window reads, their
// products with the filter, the sum, and that cell's share of the backward pass. Everything else
// the lab shows (the padded input, the output, im2col) is cnnlab.scratch's, from the API; these
// few lines exist so that a step is instant, and tests/test_studio_labs.py proves the values they
// display equal cnnlab.scratch's (conv2d_forward and conv2d_backward) on 50 random settings.

/** Output cell number t (filters, then rows, then columns) as {k, i, j}. */
export function cellOf(t, outSize) {
  const [ho, wo] = outSize;
  return { k: Math.floor(t / (ho * wo)), i: Math.floor((t % (ho * wo)) / wo), j: t % wo };
}

/**
 * The window of output cell (i, j) on the padded input: one tap per kernel weight (u, v), at
 * padded row i·s + u·d and column j·s + v·d (the formula of cnnlab.scratch.windows).
 */
export function taps(i, j, kernel, stride, dilation) {
  const out = [];
  for (let u = 0; u < kernel; u++) {
    for (let v = 0; v < kernel; v++) out.push({ u, v, r: i * stride + u * dilation, c: j * stride + v * dilation });
  }
  return out;
}

/**
 * The element-wise products of output cell (k, i, j) and their sum:
 * y[k, i, j] = b[k] + Σ_c Σ_u Σ_v xp[c, i·s + u·d, j·s + v·d] · w[k, c, u, v].
 * xp: padded input (C, Hp, Wp); w: (K, C, k, k); b: (K,). Returns {products[c][u][v], terms, sum}.
 */
export function cell(xp, w, b, k, i, j, stride, dilation) {
  const kernel = w[k][0].length;
  const window = taps(i, j, kernel, stride, dilation);
  let sum = 0;
  const terms = [];
  const products = xp.map((plane, c) => {
    const grid = Array.from({ length: kernel }, () => new Array(kernel));
    for (const { u, v, r, c: col } of window) {
      const x = plane[r][col];
      const p = x * w[k][c][u][v];
      grid[u][v] = p;
      terms.push({ c, u, v, x, w: w[k][c][u][v], p });
      sum += p;
    }
    return grid;
  });
  return { products, terms, window, sum: sum + b[k] };
}

/**
 * One output cell's share of the backward pass, with ∂L/∂y = 1 at that cell and 0 elsewhere:
 * dW[k, c, u, v] = xp[c, tap] (the window itself) and dXp[c, tap] = w[k, c, u, v] (the filter
 * placed on the window; on the padded input). Returns {dw[c][u][v], dxp: [{c, r, c2, value}]}.
 */
export function backward(xp, w, k, i, j, stride, dilation) {
  const kernel = w[k][0].length;
  const window = taps(i, j, kernel, stride, dilation);
  const dw = xp.map((plane) => {
    const grid = Array.from({ length: kernel }, () => new Array(kernel));
    for (const { u, v, r, c } of window) grid[u][v] = plane[r][c];
    return grid;
  });
  const dxp = [];
  xp.forEach((_, c) => {
    for (const { u, v, r, c: col } of window) dxp.push({ c, r, col, value: w[k][c][u][v] });
  });
  return { dw, dxp };
}
