// The status page: fetch /api/status every few seconds and re-render.
// Every name comes from outside (Jenkins, gearmand): it is set through
// textContent or attributes only, never parsed as HTML.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = String(c);
    tr.appendChild(td);
  }
  return tr;
}

function safeLink(url, text) {
  // Only http(s) links: a javascript: or data: URL from outside stays text.
  if (typeof url === "string" && /^https?:\/\//i.test(url)) {
    const a = el("a", text);
    a.href = url;
    a.rel = "noopener noreferrer";
    return a;
  }
  return el("span", text);
}

function dur(ms) {
  if (ms < 0) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + (s % 60) + "s";
  return Math.floor(m / 60) + "h " + (m % 60) + "m";
}

function fill(tbody, rows, empty, ncols) {
  tbody.replaceChildren();
  for (const r of rows) tbody.appendChild(r);
  if (!rows.length) {
    const tr = row([el("span", empty, "muted")]);
    tr.firstChild.colSpan = ncols;
    tbody.appendChild(tr);
  }
}

function renderUnoffered(d) {
  const ul = document.getElementById("unoffered");
  ul.replaceChildren();
  for (const u of d.unoffered) {
    const li = el("li", null, u.reason === "no worker registered" ? "starving" : "unoffered");
    li.appendChild(el("span", u.job || u.function, "name"));
    if (u.master) li.appendChild(el("span", " (" + u.master + ")"));
    li.appendChild(el("span", ": " + u.reason, "reason"));
    ul.appendChild(li);
  }
  if (!d.unoffered.length) ul.appendChild(el("li", "every job has a node that offers it", "muted"));
}

function renderBuilds(d) {
  fill(document.querySelector("#builds tbody"), d.builds.map(b => {
    const est = el("span");
    if (b.estimated_ms > 0) {
      const p = el("progress");
      p.max = b.estimated_ms;
      p.value = Math.min(b.elapsed_ms, b.estimated_ms);
      est.appendChild(p);
    }
    est.appendChild(el("span", " " + dur(b.elapsed_ms) + " / " + (b.estimated_ms > 0 ? dur(b.estimated_ms) : "?")));
    return row([b.master, b.node, safeLink(b.url, b.job + " #" + b.number), est]);
  }), "no build running through Gearman", 4);
}

function renderFunctions(d) {
  fill(document.querySelector("#functions tbody"), d.functions.map(f => {
    const by = el("span");
    for (const o of f.offered_by)
      by.appendChild(el("span", o.node + (o.master ? "@" + o.master : "") + " ", o.registered ? "ok" : "muted"));
    const tr = row([f.name, f.queued, f.running, f.workers, by]);
    if (f.queued > 0 && f.workers === 0) {
      tr.className = "starving";
      tr.firstChild.appendChild(el("span", " (queued, no worker)"));
    }
    return tr;
  }), "no build: function", 5);
}

function renderMaster(m, age) {
  const down = !m.coordinator_ok || m.jenkins_ok === false;
  const box = el("div", null, "master" + (down ? " down" : ""));
  const h = el("h3");
  h.appendChild(safeLink(m.url, m.name));
  h.appendChild(el("span", down ? " DOWN" : " up", down ? "down" : "ok"));
  box.appendChild(h);
  const info = [];
  if (!m.coordinator_ok) info.push("coordinator: " + m.error);
  if (m.jenkins_ok === false) info.push("Jenkins: " + m.jenkins_error);
  if (m.jenkins_ok === null && m.coordinator_ok) info.push("no status from the coordinator (" + m.status_error + ")");
  info.push("data age " + (m.age_ms >= 0 ? dur(m.age_ms + age) : "?"));
  info.push(m.verified ? "signature verified" : "unverified");
  box.appendChild(el("div", info.join(" \u00b7 "), down ? "bad" : "muted"));
  const t = el("table");
  t.appendChild(row([el("b", "node"), el("b", "labels"), el("b", "executors"), el("b", "state"), el("b", "offers")]));
  for (const n of m.nodes) {
    const labels = el("span");
    for (const l of n.labels) labels.appendChild(el("span", l, "label"));
    const state = !n.online ? el("span", "offline", "bad")
      : el("span", n.busy === null ? "online" : (n.busy + " busy / " + (n.executors - n.busy) + " idle"), "ok");
    t.appendChild(row([n.name, labels, n.executors, state, n.offers.join(" ")]));
  }
  box.appendChild(t);
  return box;
}

function render(d) {
  const age = Math.max(0, d.served_ms - d.generated_ms);
  const a = document.getElementById("age");
  a.textContent = d.generated_ms ? "data " + dur(age) + " old" : "waiting for the first poll";
  a.className = age > 3 * (d.interval_ms || 2000) + 5000 ? "stale" : "";
  renderUnoffered(d);
  renderBuilds(d);
  renderFunctions(d);
  const ms = document.getElementById("masters");
  ms.replaceChildren();
  for (const m of d.masters) ms.appendChild(renderMaster(m, age));
  if (!d.masters.length) ms.appendChild(el("p", "no coordinator found on gearmand", "muted"));
  fill(document.querySelector("#servers tbody"), d.servers.map(s => row([s.server,
    el("span", s.reachable ? "reachable" : "unreachable: " + s.error, s.reachable ? "ok" : "bad"),
    s.workers, s.queued, s.running])), "no server", 5);
}

async function tick() {
  try {
    const r = await fetch("/api/status", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    const a = document.getElementById("age");
    a.textContent = "the status server does not answer (" + e.message + ")";
    a.className = "bad";
  }
  setTimeout(tick, 2000);
}

tick();
