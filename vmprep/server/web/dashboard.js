// vmprep fleet dashboard: reads the admin JSON API with the token the operator typed (kept in
// this tab's sessionStorage only). Every value from the server is put in the page as text
// (textContent), never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const STATES = ["running", "done", "failed", "halted", "never_reported"];
  let cursor = null;
  let cursors = [];
  let timer = null;

  function token() { return sessionStorage.getItem("vmprep-admin-token") || ""; }

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + token(), Accept: "application/json" } });
    const body = await r.json();
    if (!r.ok) { throw new Error(body.error || ("HTTP " + r.status)); }
    return body;
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "-" : String(text);
    if (cls) { td.className = cls; }
    row.appendChild(td);
    return td;
  }

  function filterButton(text, role, state) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "link"; b.textContent = String(text);
    b.setAttribute("aria-label", text + " " + (role || "all roles") + " " + (state || "in all states").replace("_", " "));
    b.addEventListener("click", () => { $("role").value = role; $("state").value = state || ""; first(); });
    return b;
  }

  function showCounts(counts) {
    const body = $("counts").tBodies[0];
    body.replaceChildren();
    const roles = $("role");
    const chosen = roles.value;
    roles.replaceChildren(new Option("any", ""));
    for (const [role, byState] of Object.entries(counts)) {
      const tr = document.createElement("tr");
      const th = document.createElement("th"); th.scope = "row"; th.textContent = role; tr.appendChild(th);
      let total = 0;
      for (const s of STATES) {
        const n = byState[s] || 0; total += n;
        cell(tr, "").appendChild(filterButton(n, role, s));
      }
      cell(tr, total);
      body.appendChild(tr);
      roles.appendChild(new Option(role, role));
    }
    roles.value = chosen;
  }

  function showInstances(list) {
    const body = $("instances").tBodies[0];
    body.replaceChildren();
    for (const inst of list) {
      const tr = document.createElement("tr");
      const open = document.createElement("button");
      open.type = "button"; open.className = "link"; open.textContent = inst.instance_id;
      open.addEventListener("click", () => detail(inst.instance_id));
      cell(tr, "").appendChild(open);
      cell(tr, inst.role);
      cell(tr, (inst.state || "").replace("_", " "), "state-" + inst.state);
      cell(tr, inst.step ? inst.step.id + " (" + inst.step.status + ")" : null);
      cell(tr, inst.steps ? inst.steps.done + "/" + inst.steps.total : null);
      cell(tr, inst.config_serial);
      cell(tr, inst.received_at || inst.last_fetch);
      body.appendChild(tr);
    }
  }

  function query() {
    const p = new URLSearchParams();
    if ($("role").value) { p.set("role", $("role").value); }
    if ($("state").value) { p.set("state", $("state").value); }
    if ($("search").value) { p.set("q", $("search").value); }
    if (cursor) { p.set("after", cursor); }
    return "/v1/fleet?" + p.toString();
  }

  async function load() {
    try {
      const page = await api(query());
      showCounts(page.counts);
      showInstances(page.instances);
      $("next").disabled = !page.next;
      $("next").dataset.cursor = page.next || "";
      $("fleet").hidden = false;
      $("status").textContent = "Updated " + new Date().toLocaleTimeString() + ".";
    } catch (e) {
      $("status").textContent = "Cannot load the fleet: " + e.message;
    }
  }

  function first() { cursor = null; cursors = []; load(); }

  async function detail(id) {
    try {
      const d = await api("/v1/instances/" + encodeURIComponent(id) + "/timeline");
      $("detail-title").textContent = "Instance " + id;
      const last = d.timeline[0] || {};
      $("detail-error").textContent = last.error ? "Error " + last.error.code + ": " + last.error.message : "No error reported.";
      $("detail-tail").textContent = last.step && last.step.output_tail ? last.step.output_tail : "(no output reported)";
      const tl = $("timeline").tBodies[0]; tl.replaceChildren();
      for (const t of d.timeline) {
        const tr = document.createElement("tr");
        cell(tr, t.received_at); cell(tr, t.boot); cell(tr, t.state, "state-" + t.state);
        cell(tr, t.step ? t.step.id + " (" + t.step.status + ")" : null); cell(tr, t.config_serial);
        tl.appendChild(tr);
      }
      const sv = $("served").tBodies[0]; sv.replaceChildren();
      for (const s of d.served) {
        const tr = document.createElement("tr");
        cell(tr, s.serial); cell(tr, s.role); cell(tr, s.first_at); cell(tr, s.last_at); cell(tr, s.times);
        sv.appendChild(tr);
      }
      $("detail").hidden = false;
      $("detail").focus();
    } catch (e) {
      $("status").textContent = "Cannot load instance " + id + ": " + e.message;
    }
  }

  function schedule() {
    if (timer) { clearInterval(timer); timer = null; }
    if ($("refresh").checked) { timer = setInterval(load, 5000); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem("vmprep-admin-token", $("token").value);
      $("token").value = "";
      first(); schedule();
    });
    $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); first(); });
    $("first").addEventListener("click", first);
    $("next").addEventListener("click", () => { cursors.push(cursor); cursor = $("next").dataset.cursor; load(); });
    $("refresh").addEventListener("change", schedule);
    if (token()) { first(); schedule(); }
  });
})();
