// The modelrouter dashboard: polls /dashboard/data and draws it as SVG. No dependencies,
// nothing fetched from anywhere but this server. Every value is written as text (never
// as HTML), so nothing in the data can inject markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1, Number(params.get("refresh") || 5)) * 1000;
const KEY_ITEM = "modelrouter.key";
const W = 600, H = 160, PAD_L = 44, PAD_B = 18, PAD_T = 8;

const $ = (id) => document.getElementById(id);

function usd(v) {
  if (v === null || v === undefined) return "–";
  if (v === 0) return "$0";
  const a = Math.abs(v);
  return "$" + (a >= 100 ? v.toFixed(0) : a >= 0.1 ? v.toFixed(2) : a >= 0.001 ? v.toFixed(4) : v.toPrecision(2));
}
const pct = (v) => (100 * v).toFixed(1) + "%";
const ms = (v) => (v === null || v === undefined ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// Bars over time; `series` = [{key, cls}] stacked bottom-up. `line` draws one more series.
function timeChart(svg, buckets, series, line, format) {
  clear(svg);
  const totals = buckets.map((b) => series.reduce((s, x) => s + b[x.key], 0));
  const lineValues = line ? buckets.map((b) => b[line.key]) : [];
  const top = Math.max(...totals, ...lineValues, 0) || 1;
  const plotW = W - PAD_L, plotH = H - PAD_B - PAD_T;
  const step = plotW / buckets.length;
  const y = (v) => PAD_T + plotH - (v / top) * plotH;
  svg.appendChild(el("line", { class: "axis", x1: PAD_L, y1: y(0), x2: W, y2: y(0) }));
  svg.appendChild(el("text", { x: PAD_L - 4, y: y(top) + 8, "text-anchor": "end" }, format(top)));
  svg.appendChild(el("text", { x: PAD_L - 4, y: y(0), "text-anchor": "end" }, format(0)));
  buckets.forEach((b, i) => {
    let base = 0;
    for (const s of series) {
      const v = b[s.key];
      if (v > 0) {
        const rect = el("rect", {
          class: "bar " + s.cls, x: PAD_L + i * step + 1, width: Math.max(step - 2, 1),
          y: y(base + v), height: y(base) - y(base + v),
          "data-series": s.key, "data-t": b.t, "data-value": v,
        });
        rect.appendChild(el("title", {}, `${clock(b.t)} ${s.key}: ${format(v)}`));
        svg.appendChild(rect);
      }
      base += v;
    }
    if (i % 15 === 0) {
      svg.appendChild(el("text", { x: PAD_L + i * step, y: H - 4 }, clock(b.t)));
    }
  });
  if (line) {
    const points = buckets.map((b, i) => `${PAD_L + (i + 0.5) * step},${y(Math.max(b[line.key], 0))}`);
    svg.appendChild(el("polyline", { class: "line " + line.cls, points: points.join(" "),
      "data-series": line.key, "data-total": lineValues.reduce((a, b) => a + b, 0) }));
  }
}

// Horizontal bars, one per item: [{label, value, note}].
function barChart(svg, items, cls) {
  clear(svg);
  if (!items.length) {
    svg.appendChild(el("text", { x: 8, y: 20 }, "no traffic yet"));
    return;
  }
  const rowH = Math.min(28, (H - 4) / items.length);
  const top = Math.max(...items.map((d) => d.value)) || 1;
  const labelW = 110, plotW = W - labelW - 210;
  items.forEach((d, i) => {
    const yTop = 2 + i * rowH;
    svg.appendChild(el("text", { x: labelW - 6, y: yTop + rowH * 0.65, "text-anchor": "end" }, d.label));
    const rect = el("rect", { class: "bar " + cls, x: labelW, y: yTop + 3,
      width: Math.max((d.value / top) * plotW, d.value ? 1 : 0), height: rowH - 6,
      "data-label": d.label, "data-value": d.value });
    rect.appendChild(el("title", {}, `${d.label}: ${d.value}`));
    svg.appendChild(rect);
    svg.appendChild(el("text", { x: labelW + (d.value / top) * plotW + 6, y: yTop + rowH * 0.65 },
      d.note || String(d.value)));
  });
}

function row(tbody, cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c);
    else td.textContent = c;
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
  return tr;
}

function render(data) {
  const t = data.totals;
  $("scope").textContent = data.scope === "all" ? `all tenants (as ${data.viewer})` : `tenant ${data.viewer}`;
  $("updated").textContent = "updated " + new Date(data.generated_at * 1000).toLocaleTimeString();
  $("kpi-requests").textContent = String(t.requests);
  $("kpi-requests-sub").textContent = `${t.decisions} decisions, ${t.executions} executions`;
  $("kpi-cost").textContent = usd(t.cost_usd);
  $("kpi-cost-sub").textContent = `estimated ${usd(t.estimated_cost_usd)}`;
  $("kpi-saving").textContent = usd(t.saving_usd);
  $("kpi-saving-sub").textContent = `${pct(t.saving_ratio)} of ${usd(t.strongest_estimated_cost_usd)} (strongest model)`;
  $("kpi-error-rate").textContent = pct(t.error_rate);
  $("kpi-error-sub").textContent = `${t.errors} errors, ${t.server_errors} server faults`;
  $("kpi-failover-rate").textContent = pct(t.failover_rate);
  $("kpi-failover-sub").textContent = `${t.fallbacks} failovers, ${t.retries} retries`;

  const buckets = data.timeline.buckets.map((b) => ({ ...b, ok: b.requests - b.errors }));
  timeChart($("chart-requests"), buckets, [{ key: "ok", cls: "ok" }, { key: "errors", cls: "err" }],
    null, (v) => String(Math.round(v)));
  timeChart($("chart-cost"), buckets, [{ key: "cost_usd", cls: "cost" }],
    { key: "saving_usd", cls: "save" }, usd);
  barChart($("chart-models"), data.models.map((m) => ({ label: m.model, value: m.selected,
    note: `${m.selected} chosen, ${m.answered} answered, ${usd(m.cost_usd)}` })), "mix");
  const sample = data.tiers.sample;
  $("tiers-sample").textContent = `(last ${sample} decisions)`;
  barChart($("chart-tiers"), sample ? data.tiers.counts.map((c) => ({ label: c.tier, value: c.count,
    note: `${c.count} (${pct(c.count / sample)})` })) : [], "tier");

  const latency = $("latency").tBodies[0];
  clear(latency);
  for (const m of data.latency) row(latency, [m.method, String(m.requests), ms(m.p50_ms), ms(m.p90_ms), ms(m.p99_ms), ms(m.mean_ms)]);

  const budgets = $("budgets").tBodies[0];
  clear(budgets);
  for (const b of data.budgets) {
    if (!b.windows.length) { row(budgets, [b.tenant, "no limit", "", "", "", "", ""]); continue; }
    for (const w of b.windows) {
      const meter = document.createElement("div");
      meter.className = "meter";
      for (const [cls, v] of [["spent", w.spent_usd], ["reserved", w.reserved_usd]]) {
        const part = document.createElement("div");
        part.className = cls;
        part.style.width = (w.limit_usd ? Math.min(100, (100 * v) / w.limit_usd) : 0) + "%";
        meter.appendChild(part);
      }
      const tr = row(budgets, [b.tenant, w.window, usd(w.limit_usd), usd(w.spent_usd), usd(w.reserved_usd), usd(w.remaining_usd), meter]);
      tr.dataset.tenant = b.tenant;
      tr.dataset.window = w.window;
    }
  }

  $("shadow").hidden = !data.shadow;
  if (data.shadow) {
    const skipped = Object.entries(data.shadow.skipped).map(([k, v]) => `${k} ${v}`).join(", ");
    $("shadow-sub").textContent = `· judging and reference answers cost ${usd(data.shadow.cost_usd)}` + (skipped ? `; skipped: ${skipped}` : "");
    const quality = $("shadow-quality").tBodies[0];
    clear(quality);
    for (const q of data.shadow.quality) {
      const tr = row(quality, [q.model, q.complexity, String(q.evaluations), pct(q.adequacy_rate),
        (q.quality_gap >= 0 ? "+" : "") + q.quality_gap.toFixed(2),
        q.calibrated_evaluations ? q.mean_p_adequate.toFixed(2) : "–",
        q.calibrated_evaluations ? q.calibration_error.toFixed(3) : "–"]);
      tr.dataset.model = q.model;
    }
  }

  const recent = $("recent").tBodies[0];
  clear(recent);
  for (const d of data.recent) {
    const tr = row(recent, [
      new Date(d.created_at * 1000).toLocaleTimeString(), d.tenant, d.kind, d.model, d.complexity,
      d.task_type, d.outcome, usd(d.actual_cost_usd ?? d.estimated_cost_usd), ms(d.latency_ms), d.reason,
    ]);
    tr.dataset.decisionId = d.decision_id;
    tr.cells[6].className = "outcome-" + d.outcome;
    tr.cells[9].className = "reason";
  }
}

async function refresh() {
  const key = sessionStorage.getItem(KEY_ITEM);
  const headers = key ? { Authorization: "Bearer " + key } : {};
  try {
    const response = await fetch("/dashboard/data", { headers, cache: "no-store" });
    if (response.status === 401) {
      $("login").hidden = false;
      $("status").textContent = key ? "that key was refused" : "this router asks for an API key";
      $("status").className = "status bad";
      return;
    }
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    $("login").hidden = true;
    render(data);
    $("status").textContent = `live, every ${REFRESH_MS / 1000} s`;
    $("status").className = "status";
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  } catch (error) {
    $("status").textContent = "cannot reach the router: " + error.message;
    $("status").className = "status bad";
  }
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
  $("key").value = "";
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
