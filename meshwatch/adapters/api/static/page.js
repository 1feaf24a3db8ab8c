// meshwatch's own live graph page. It draws the rows of /api/v1/nodegraph (the same rows the
// Grafana Node Graph panel reads) with Cytoscape.js, vendored under /static/vendor, and
// refreshes them every few seconds. Credentials: the session cookie set by /?token=..., sent
// by the browser with every same-origin request.
"use strict";

(function () {
  const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 3) * 1000;
  const EXTERNAL = "ns:external";
  const state = { cy: null, refreshes: 0, lastUpdate: null, lastError: null, selected: null };
  window.meshwatch = state;

  const $ = (id) => document.getElementById(id);

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  function fmt(v, unit) {
    if (v === null || v === undefined || v === "") return "–";
    return unit ? `${v} ${unit}` : String(v);
  }

  function nodeElement(n) {
    const external = n.id.startsWith("external/");
    return {
      group: "nodes",
      data: {
        id: n.id,
        parent: external ? EXTERNAL : `ns:${n.subtitle || "-"}`,
        label: n.title,
        color: n.color,
        external,
        row: n,
      },
    };
  }

  function edgeElement(e) {
    const rps = e.mainstat === null ? "" : `${e.mainstat}/s`;
    return {
      group: "edges",
      data: {
        id: e.id,
        source: e.source,
        target: e.target,
        color: e.color,
        width: e.thickness,
        dashed: e.strokeDasharray !== "",
        denied: e.detail__denied === true,
        highlighted: e.highlighted === true,
        status: e.detail__status,
        label: e.detail__denied ? `⛔ ${rps}` : rps,
        row: e,
      },
    };
  }

  function parents(nodes) {
    const seen = new Map();
    for (const n of nodes) {
      const parent = n.data.parent;
      if (!seen.has(parent)) {
        const ns = parent.slice(3);
        const label = parent === EXTERNAL ? "outside the mesh" : ns === "-" ? "unidentified" : `namespace ${ns}`;
        seen.set(parent, { group: "nodes", data: { id: parent, label, isGroup: true, external: parent === EXTERNAL } });
      }
    }
    return [...seen.values()];
  }

  function makeGraph() {
    return cytoscape({
      container: $("graph"),
      wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: {
          "background-color": "data(color)", label: "data(label)", "font-size": 11,
          "text-valign": "bottom", "text-margin-y": 4, width: 26, height: 26 } },
        { selector: "node[?isGroup]", style: {
          "background-color": "#eef2f7", "background-opacity": 0.6, "border-color": "#b6c2d1",
          "border-width": 1, label: "data(label)", "text-valign": "top", "font-weight": 600,
          color: "#44546a", shape: "round-rectangle", padding: 18 } },
        { selector: "node[?isGroup][?external]", style: {
          "background-color": "#e8f0fe", "border-style": "dashed", "border-color": "#5794f2" } },
        { selector: "edge", style: {
          width: "data(width)", "line-color": "data(color)", "target-arrow-color": "data(color)",
          "target-arrow-shape": "triangle", "curve-style": "bezier", label: "data(label)",
          "font-size": 9, "text-rotation": "autorotate", "text-background-color": "#fff",
          "text-background-opacity": 0.8 } },
        { selector: "edge[?dashed]", style: { "line-style": "dashed", "line-dash-pattern": [6, 4] } },
        { selector: "edge[?denied]", style: { "target-arrow-shape": "tee" } },
        { selector: "edge[?highlighted]", style: { "z-index": 10 } },
        { selector: ":selected", style: { "overlay-opacity": 0.15, "overlay-color": "#333" } },
      ],
    });
  }

  function layout(cy) {
    const mesh = cy.elements().filter((el) => !el.data("external"));
    mesh.layout({ name: "cose", animate: false, nodeDimensionsIncludeLabels: true, randomize: false, fit: false }).run();
    const box = mesh.boundingBox();
    const externals = cy.nodes().filter((n) => n.data("external") && !n.data("isGroup"));
    externals.forEach((n, i) => {
      n.position({ x: (isFinite(box.x2) ? box.x2 : 0) + 220, y: (isFinite(box.y1) ? box.y1 : 0) + 70 * i });
    });
    cy.fit(undefined, 30);
  }

  function describe(el) {
    const row = el.data("row");
    const facts = [];
    if (el.isEdge()) {
      facts.push(["edge", `${row.source} → ${row.target}`], ["port", row.detail__port],
        ["protocol", row.detail__protocol], ["status", row.detail__status],
        ["requests", fmt(row.mainstat, "/s")], ["p50", fmt(row.detail__p50_ms, "ms")],
        ["p99", fmt(row.secondarystat, "ms")], ["errors", fmt(row.detail__errors_pct, "%")],
        ["principal", fmt(row.detail__principal)], ["first seen", fmt(row.detail__first_seen)],
        ["last seen", fmt(row.detail__last_seen)], ["reasons", fmt(row.detail__reasons)],
        ["policy", row.detail__policy ? `${row.detail__policy} (${row.detail__policy_state})` : "none"],
        ["denied", row.detail__denied ? "yes" : "no"]);
    } else if (row) {
      facts.push(["node", row.id], ["namespace", fmt(row.detail__namespace)],
        ["workload", fmt(row.detail__workload)], ["principal", fmt(row.detail__principal)],
        ["provider", fmt(row.detail__provider)], ["requests in", fmt(row.detail__requests_in, "/s")],
        ["requests out", fmt(row.detail__requests_out, "/s")], ["errors", fmt(row.secondarystat, "%")],
        ["open anomalies", row.detail__anomalies]);
    }
    const dl = $("facts");
    dl.replaceChildren();
    for (const [k, v] of facts) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = String(v);
      dd.dataset.fact = k;
      dl.append(dt, dd);
    }
    document.querySelector("#details .hint").hidden = facts.length > 0;
  }

  function fillTable(edges) {
    const body = $("edge-rows");
    body.replaceChildren();
    for (const e of edges) {
      const tr = document.createElement("tr");
      tr.dataset.edge = e.id;
      tr.dataset.status = e.detail__status;
      for (const v of [e.source, e.target, e.detail__port, e.detail__status, e.mainstat, fmt(e.secondarystat),
        e.detail__policy ? `${e.detail__policy} (${e.detail__policy_state})` : ""]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.append(td);
      }
      body.append(tr);
    }
  }

  function fillNamespaces(nodes) {
    const select = $("namespace");
    const known = new Set([...select.options].map((o) => o.value));
    for (const ns of [...new Set(nodes.map((n) => n.detail__namespace).filter(Boolean))].sort()) {
      if (!known.has(ns)) select.append(new Option(ns, ns));
    }
  }

  function apply(doc) {
    const cy = state.cy || (state.cy = makeGraph());
    const nodes = doc.nodes.map(nodeElement);
    const wanted = [...parents(nodes), ...nodes, ...doc.edges.map(edgeElement)];
    const ids = new Set(wanted.map((w) => w.data.id));
    let changed = false;
    cy.batch(() => {
      cy.elements().filter((el) => !ids.has(el.id())).forEach((el) => { el.remove(); changed = true; });
      for (const w of wanted) {
        const el = cy.getElementById(w.data.id);
        if (el.empty()) { cy.add(w); changed = true; } else { el.data(w.data); }
      }
    });
    if (changed) layout(cy);
    if (state.selected) {
      const el = cy.getElementById(state.selected);
      if (el.nonempty()) describe(el);
    }
    fillTable(doc.edges);
    fillNamespaces(doc.nodes);
  }

  async function refresh() {
    const params = new URLSearchParams();
    const ns = $("namespace").value;
    if (ns) params.set("namespace", ns);
    try {
      const response = await fetch(`/api/v1/nodegraph?${params}`, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) {
        throw new Error("unauthorised: open this page once as /?token=<your API token>");
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const doc = await response.json();
      apply(doc);
      state.refreshes += 1;
      state.lastUpdate = new Date();
      state.lastError = null;
      setStatus(`${doc.nodes.length} nodes · ${doc.edges.length} edges · ${doc.window_seconds}s window · updated ${state.lastUpdate.toLocaleTimeString()}`);
    } catch (err) {
      state.lastError = String(err.message || err);
      setStatus(state.lastError, true);
    }
  }

  function start() {
    state.cy = makeGraph();
    state.cy.on("tap", "node, edge", (evt) => {
      if (evt.target.data("isGroup")) return;
      state.selected = evt.target.id();
      describe(evt.target);
    });
    $("namespace").addEventListener("change", () => { state.cy.elements().remove(); refresh(); });
    refresh();
    setInterval(refresh, Math.max(1000, REFRESH_MS));
  }

  document.addEventListener("DOMContentLoaded", start);
})();
