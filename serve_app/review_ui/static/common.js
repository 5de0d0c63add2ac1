"use strict";
// Shared by every review page: the API client (with sign-in and CSRF), a tiny element builder,
// notices, dialogs and the keyboard layer (shortcuts are ignored while typing in a field).
const SA = (() => {
  const body = document.body;
  const root = body.dataset.root || "";
  let csrf = null;
  let sessionKnown = false;

  class ApiError extends Error {
    constructor(status, detail, body) {
      super(detail);
      this.status = status;
      this.body = body || {};
    }
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }

  async function session() {
    const r = await fetch(root + "auth/session");
    const s = await r.json();
    csrf = s.csrf_token;
    sessionKnown = true;
    return s;
  }

  async function signIn() {
    const token = await prompt("This server needs its API token to make changes.", { label: "API token", type: "password" });
    if (!token) return false;
    const r = await fetch(root + "auth/session", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) });
    if (!r.ok) {
      toast("Wrong token", "error");
      return false;
    }
    csrf = (await r.json()).csrf_token;
    return true;
  }

  async function api(path, { method = "GET", json, form, raw = false } = {}) {
    const send = async () => {
      const opts = { method, headers: {} };
      if (json !== undefined) {
        opts.headers["content-type"] = "application/json";
        opts.body = JSON.stringify(json);
      } else if (form !== undefined) {
        opts.body = form;
      }
      if (method !== "GET" && csrf) opts.headers["x-csrf-token"] = csrf;
      return fetch(root + path, opts);
    };
    if (method !== "GET" && !sessionKnown) await session();
    let r = await send();
    if (r.status === 401 && method !== "GET" && (await signIn())) r = await send();
    if (!r.ok) {
      let detail = r.statusText;
      let payload = {};
      try {
        payload = await r.json();
        const d = payload.detail;
        detail = typeof d === "string" ? d : JSON.stringify(d);
      } catch (e) {
        /* not JSON */
      }
      throw new ApiError(r.status, detail, payload);
    }
    return raw ? r : r.json();
  }

  let toastTimer = null;
  function toast(message, kind = "info") {
    const el = document.getElementById("toast");
    el.textContent = message;
    el.className = `show ${kind}`;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (el.className = ""), kind === "error" ? 6000 : 2500);
  }

  async function guarded(action) {
    try {
      return await action();
    } catch (e) {
      toast(e.message || String(e), "error");
      return undefined;
    }
  }

  function dialog(title, content, buttons) {
    // A modal <dialog>; resolves with the value of the button chosen (Escape: null).
    return new Promise((resolve) => {
      const d = h("dialog", { "aria-label": title }, h("h2", { text: title }), content);
      const row = h("div", { class: "buttons" });
      for (const b of buttons) row.append(h("button", { type: "button", class: b.primary ? "primary" : "", onclick: () => close(b.value), text: b.label }));
      d.append(row);
      const close = (value) => {
        d.close();
        d.remove();
        resolve(value);
      };
      d.addEventListener("cancel", (ev) => {
        ev.preventDefault();
        close(null);
      });
      document.body.append(d);
      d.showModal();
      const first = d.querySelector("input, select") || d.querySelector("button.primary") || d.querySelector("button");
      if (first) first.focus();
    });
  }

  function prompt(message, { label = "Value", type = "text", value = "", options = [] } = {}) {
    const listId = `list-${Math.random().toString(36).slice(2)}`;
    const input = h("input", { type, value, "aria-label": label, list: options.length ? listId : null, autocomplete: "off" });
    const content = h("form", { method: "dialog" }, h("p", { text: message }), h("label", {}, label, " ", input), options.length ? h("datalist", { id: listId }, options.map((o) => h("option", { value: o }))) : null);
    const done = dialog(label, content, [
      { label: "Cancel", value: null },
      { label: "OK", value: "ok", primary: true },
    ]).then((v) => (v === "ok" ? input.value.trim() : null));
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        input.closest("dialog").querySelector("button.primary").click();
      }
    });
    return done;
  }

  const shortcuts = [];
  function typing(ev) {
    const t = ev.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }
  function keys(map) {
    // map: [{keys: ["j", "ArrowDown"], help: "next identity", run: fn}]
    shortcuts.push(...map);
  }
  document.addEventListener("keydown", (ev) => {
    if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey || document.querySelector("dialog[open]")) return;
    if (ev.key === "?") {
      ev.preventDefault();
      help();
      return;
    }
    for (const s of shortcuts) {
      if (s.keys.includes(ev.key)) {
        ev.preventDefault();
        s.run(ev);
        return;
      }
    }
  });
  function help() {
    const rows = shortcuts.map((s) => h("tr", {}, h("td", {}, s.keys.map((k) => h("kbd", { text: k }))), h("td", { text: s.help })));
    rows.push(h("tr", {}, h("td", {}, h("kbd", { text: "?" })), h("td", { text: "this help" })));
    dialog("Keyboard shortcuts", h("table", { class: "keys" }, h("tbody", {}, rows)), [{ label: "Close", value: null, primary: true }]);
  }
  document.getElementById("help-button").addEventListener("click", help);

  function fmtS(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds * 10) / 10;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    return `${m}:${String(Math.round(s - 60 * m)).padStart(2, "0")}`;
  }

  function slug(name) {
    return name
      .toLowerCase()
      .normalize("NFKD")
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 100) || "cast";
  }

  function setMain(...children) {
    const main = document.getElementById("main");
    const title = main.querySelector("h1");
    main.replaceChildren(title, ...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  return { root, body, api, h, svg, toast, guarded, dialog, prompt, keys, fmtS, slug, setMain, ApiError, session };
})();
