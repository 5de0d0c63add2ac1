"use strict";
// Episode review: identities ranked by screen time, their faces (farthest from the centre first) and
// naming suggestions; every action is a correction through the API, then the page reloads its data,
// so no number on it is ever stale.
(() => {
  const { api, h, toast, guarded, dialog, prompt, keys, fmtS, slug, setMain, body, ApiError } = SA;
  const ep = body.dataset.ep;
  const run = body.dataset.run;
  const runPath = `episodes/${ep}/runs/${encodeURIComponent(run)}`; // every operation on the run names it in its path
  const show = body.dataset.show;
  const FACES = 10;
  let bundle = null;
  let cast = [];
  let focus = 0; // identity index
  let faceFocus = 0;
  let mergeSource = null;
  let busy = false;
  const picked = new Set(); // identities selected for a bulk action (space, a click on the box, A)

  async function castOfShow() {
    // the show may not exist yet (no cast named): ask the list first rather than fetch a 404
    const shows = (await api("shows")).shows;
    return shows.some((s) => s.show_id === show) ? (await api(`shows/${show}/cast`)).cast : [];
  }

  const names = () => Object.fromEntries(cast.map((c) => [c.cast_id, c.name]));
  const current = () => (bundle ? bundle.identities[focus] : null);

  async function load(keepId) {
    const [b, c] = await Promise.all([api(`${runPath}/faces_review_bundle?faces=${FACES}`), castOfShow()]);
    bundle = b;
    cast = c;
    if (keepId !== undefined) {
      const k = bundle.identities.findIndex((i) => i.identity_id === keepId);
      focus = k >= 0 ? k : Math.min(focus, bundle.identities.length - 1);
    }
    focus = Math.max(0, Math.min(focus, bundle.identities.length - 1));
    render();
  }

  function likely(ident) {
    // Suggestions worth a numbered key: at or above the show's suggestion floor, not rejected.
    return (ident.suggestions || []).filter((s) => s.likely !== false && !s.rejected);
  }

  function undecided(ident) {
    return !ident.cast_id && !ident.mark && ident.kind === "face";
  }

  function stranger(ident) {
    // Nobody named it and no cast member is a likely match: a guest, an audience member, or not a face.
    return undecided(ident) && !likely(ident).length;
  }

  function thumb(url) {
    // Dark or flat crops are contrast-stretched for display (the server leaves readable ones as they are).
    return SA.root + url.replace(/^\//, "") + (url.includes("?") ? "&" : "?") + "readable=1";
  }

  function nameLine(ident) {
    const n = names();
    if (ident.cast_id) {
      const how = ident.name_source === "auto" ? `auto ${ident.confidence !== null ? ident.confidence.toFixed(2) : ""}` : "confirmed";
      return h("span", { class: `name ${ident.name_source || "manual"}` }, n[ident.cast_id] || ident.cast_id, h("small", { text: ` (${how})` }));
    }
    if (ident.kind === "junk" && ident.mark !== "face") return h("span", { class: "name notface", text: `Not counted: not a face (${ident.reason})` });
    if (ident.kind === "extra" && ident.mark !== "face") return h("span", { class: "name notface", text: `Extra (${ident.reason}), listed apart` });
    if (ident.mark === "guest") return h("span", { class: "name guest", text: `Guest${ident.guest_label ? ": " + ident.guest_label : ""}` });
    if (ident.mark === "not_face") return h("span", { class: "name notface", text: "Not a face" });
    if (ident.guest_label) return h("span", { class: "name unknown", text: `Unnamed (looks like guest ${ident.guest_label})` });
    return h("span", { class: "name unknown", text: "Unnamed" });
  }

  function card(ident, k) {
    const n = names();
    const selected = k === focus;
    const faces = (ident.faces || []).map((f, j) =>
      h(
        "figure",
        { class: `face${selected && j === faceFocus ? " focused" : ""}${f.excluded ? " excluded" : ""}`, title: `${f.face_id} · similarity ${f.similarity}` },
        f.url ? h("img", { src: thumb(f.url), alt: `face ${f.face_id}`, width: 72, height: 72, loading: "lazy", decoding: "async" }) : h("div", { class: "noimg", text: "no crop" }),
        h("figcaption", { text: f.similarity.toFixed(2) }),
      ),
    );
    const offered = likely(ident).slice(0, 9);
    const suggestions = offered.map((s, j) =>
      h(
        "button",
        { type: "button", class: "suggestion", onclick: () => act(() => accept(ident, j)), title: `accept (${j + 1})` },
        h("kbd", { text: String(j + 1) }),
        ` ${n[s.cast_id] || s.cast_id} ${s.score.toFixed(2)}`,
      ),
    );
    const noMatch = undecided(ident) && !offered.length;
    const candidates = (ident.merge_candidates || []).map((c, j) => {
      const other = bundle.identities.find((i) => i.identity_id === c.identity_id);
      return h(
        "button",
        { type: "button", class: "candidate", onclick: () => act(() => mergeWith(ident, c.identity_id)), title: `merge with ${c.identity_id}${j === 0 ? " (M)" : ""}` },
        j === 0 ? h("kbd", { text: "M" }) : null,
        other && other.rep_crop_url ? h("img", { src: thumb(other.rep_crop_url), alt: `face of ${c.identity_id}`, width: 32, height: 32, loading: "lazy" }) : null,
        ` ${c.identity_id}${castName(c.identity_id)} ${c.similarity.toFixed(2)}${c.handoff ? " · continues its track" : c.same_shot ? " · same shot" : ""}`,
      );
    });
    const decide = [
      ["g", "Guest", () => mark(ident, "guest")],
      ["n", "Not a face", () => mark(ident, "not_face")],
    ];
    const actions = [
      ...(noMatch ? decide : []), // no likely cast match: what a reviewer will most likely do comes first
      ["a", "Assign…", () => assignPrompt(ident)],
      ...(noMatch ? [] : decide),
      ["r", "Not this", () => reject(ident)],
      ["m", mergeSource === ident.identity_id ? "Merging…" : "Merge", () => merge(ident)],
      ["s", "Split track", () => split(ident)],
      ["x", "Exclude face", () => exclude(ident)],
      ...(ident.kind !== "face" ? [["f", ident.mark === "face" ? "Counted (restored)" : "Restore: it is a face", () => restore(ident)]] : []),
    ].map(([key, label, run]) => h("button", { type: "button", onclick: () => act(run), title: `${label} (${key})` }, label, " ", h("kbd", { text: key })));
    const box = h("input", {
      type: "checkbox",
      class: "pick",
      "aria-label": `select ${ident.identity_id}`,
      checked: picked.has(ident.identity_id),
      onclick: (ev) => {
        ev.stopPropagation();
        togglePick(ident);
      },
    });
    return h(
      "section",
      {
        class: `identity${selected ? " selected" : ""}${mergeSource === ident.identity_id ? " merging" : ""}${picked.has(ident.identity_id) ? " picked" : ""}`,
        id: `card-${ident.identity_id}`,
        "aria-current": selected ? "true" : null,
        dataset: { identity: ident.identity_id },
      },
      h(
        "header",
        { onclick: () => select(k) },
        box,
        h("h2", { text: ident.identity_id }),
        nameLine(ident),
        h("span", { class: "stats", text: `${fmtS(ident.visual_s)} · ${ident.tracks.length} track${ident.tracks.length === 1 ? "" : "s"} · cohesion ${ident.cohesion.toFixed(2)}` }),
      ),
      h("div", { class: "faces" }, faces),
      suggestions.length ? h("div", { class: "suggestions", "aria-label": "Suggestions" }, suggestions) : null,
      noMatch ? h("p", { class: "nomatch", text: "No likely cast match." }) : null,
      candidates.length ? h("div", { class: "candidates", "aria-label": "Looks like" }, h("span", { text: "Looks like:" }), candidates) : null,
      h("div", { class: "actions" }, actions),
    );
  }

  function castName(identityId) {
    const other = bundle.identities.find((i) => i.identity_id === identityId);
    return other && other.cast_id ? ` (${names()[other.cast_id] || other.cast_id})` : "";
  }

  function render() {
    const review = bundle.needs_review.length;
    const summary = h(
      "p",
      { class: "summary" },
      `${bundle.identities.length} identities · ${review} to review · `,
      picked.size ? h("strong", { text: `${picked.size} selected (g, n or m for all; Esc clears) · ` }) : "",
      h("a", { href: `${ep}/screentime?run_id=${encodeURIComponent(run)}`, text: "screen time (t)" }),
      " · ",
      h("a", { href: `../shows/${show}`, text: `show ${show}` }),
    );
    const list = h("div", { class: "identities", role: "list" }, bundle.identities.map(card));
    const conflicts = bundle.conflicts.length ? h("p", { class: "warn", text: `${bundle.conflicts.length} label conflict(s): ${bundle.conflicts.map((c) => c.reason).join("; ")}` }) : null;
    setMain(summary, conflicts, list);
    const sel = document.getElementById(`card-${current()?.identity_id}`);
    if (sel) sel.scrollIntoView({ block: "nearest" });
  }

  function select(k) {
    focus = Math.max(0, Math.min(k, bundle.identities.length - 1));
    faceFocus = 0;
    render();
  }

  async function act(action) {
    if (busy || !bundle) return;
    busy = true;
    body.classList.add("busy");
    try {
      await guarded(action);
    } finally {
      busy = false;
      body.classList.remove("busy");
    }
  }

  function togglePick(ident) {
    if (!ident) return;
    if (picked.has(ident.identity_id)) picked.delete(ident.identity_id);
    else picked.add(ident.identity_id);
    render();
  }

  function pickStrangers() {
    // Every identity nobody named and no cast member likely matches: an audience, a crowd.
    bundle.identities.filter(stranger).forEach((i) => picked.add(i.identity_id));
    render();
    toast(`${picked.size} selected: g marks them guests, n not faces, m merges them into the current one`);
  }

  async function bulk(paths, message) {
    // One correction per identity, all with one group id (one undo takes them all back).
    const group = `bulk-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const ident = current();
    try {
      for (const [path, json] of paths) {
        await api(path, { method: "POST", json: { cluster_version: bundle.cluster_version, group, ...json } });
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.body.cluster_version) {
        picked.clear();
        await load(ident.identity_id);
        toast("This run was re-clustered since the page loaded: reloaded, nothing was changed.", "error");
        return;
      }
      throw e;
    }
    picked.clear();
    await load(ident.identity_id);
    toast(message);
  }

  async function markPicked(kind) {
    const ids = [...picked];
    await bulk(
      ids.map((id) => [`${runPath}/identities/${id}/mark`, { kind, label: null }]),
      `${ids.length} identities: ${kind === "guest" ? "guests" : "not faces"} (u undoes all)`,
    );
  }

  async function mergePicked(target) {
    const ids = [...picked].filter((id) => id !== target.identity_id);
    if (!ids.length) return toast("select other identities to merge into this one", "error");
    await bulk(
      ids.map((id) => [`${runPath}/identities/merge`, { target_identity_id: target.identity_id, source_identity_id: id }]),
      `merged ${ids.length} into ${target.identity_id} (u undoes all)`,
    );
  }

  async function mergeWith(ident, otherId) {
    // A named identity is the one kept, so its name stays; else the candidate is kept.
    const other = bundle.identities.find((i) => i.identity_id === otherId);
    const [keep, gone] = ident.cast_id && !(other && other.cast_id) ? [ident.identity_id, otherId] : [otherId, ident.identity_id];
    await correction(`${runPath}/identities/merge`, { target_identity_id: keep, source_identity_id: gone }, `merged ${gone} into ${keep}`, false, keep);
  }

  async function mergeTop(ident) {
    const top = (ident.merge_candidates || [])[0];
    if (!top) return toast("no merge candidate for this identity", "error");
    await mergeWith(ident, top.identity_id);
  }

  async function correction(path, json, message, advance, keepId) {
    const ident = current();
    try {
      // The ids on this page mean what they meant in the clustering it loaded: a re-cluster since then is a 409.
      await api(path, { method: "POST", json: { cluster_version: bundle.cluster_version, ...json } });
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.body.cluster_version) {
        await load(ident.identity_id);
        toast("This run was re-clustered since the page loaded: reloaded, nothing was changed. Check the card and try again.", "error");
        return;
      }
      throw e;
    }
    const nextId = keepId || (advance && bundle.identities[focus + 1] ? bundle.identities[focus + 1].identity_id : ident.identity_id);
    await load(nextId);
    toast(message);
  }

  async function ensureCast(name) {
    const byName = cast.find((c) => c.name.toLowerCase() === name.toLowerCase() || c.cast_id === name);
    if (byName) return byName.cast_id;
    await api("shows", { method: "POST", json: { show_id: show, name: show } }); // created unless it exists
    const castId = slug(name);
    await api(`shows/${show}/cast`, { method: "POST", json: { cast_id: castId, name } });
    return castId;
  }

  async function assign(ident, castId) {
    await correction(`${runPath}/assignments/cluster`, { cluster_id: ident.identity_id, cast_id: castId }, `${ident.identity_id} is ${names()[castId] || castId}`, true);
  }

  async function accept(ident, j) {
    const s = likely(ident)[j]; // only likely matches have keys: a stranger is never named by habit
    if (!s) return toast(likely(ident).length ? `no suggestion ${j + 1}` : "no likely cast match: a (assign), g (guest) or n (not a face)", "error");
    await assign(ident, s.cast_id);
  }

  async function assignPrompt(ident) {
    const name = await prompt(`Who is ${ident.identity_id}? Pick a cast member or type a new name.`, { label: "Cast member", options: cast.map((c) => c.name) });
    if (!name) return;
    const castId = await ensureCast(name);
    cast = await castOfShow();
    await assign(ident, castId);
  }

  async function mark(ident, kind, label) {
    await correction(`${runPath}/identities/${ident.identity_id}/mark`, { kind, label: label || null }, `${ident.identity_id}: ${kind === "guest" ? "guest" : "not a face"}`, true);
  }

  async function restore(ident) {
    if (ident.kind === "face") return toast("already a face", "error");
    await correction(`${runPath}/identities/${ident.identity_id}/mark`, { kind: ident.mark === "face" ? null : "face" }, `${ident.identity_id} ${ident.mark === "face" ? "back to " + ident.kind : "restored: it counts"}`, false);
  }

  async function guestNamed(ident) {
    const label = await prompt("Guest's name (recognised in later episodes):", { label: "Guest" });
    if (label) await mark(ident, "guest", label);
  }

  async function reject(ident) {
    const s = (ident.suggestions || []).find((x) => !x.rejected);
    if (!s) return toast("no suggestion to reject", "error");
    await correction(`${runPath}/identities/${ident.identity_id}/reject`, { cast_id: s.cast_id }, `${ident.identity_id} is not ${names()[s.cast_id] || s.cast_id}`, false);
  }

  function faceStrip(ident) {
    return h("div", { class: "faces" }, (ident.faces || []).slice(0, 6).map((f) => (f.url ? h("img", { src: thumb(f.url), alt: f.face_id, width: 64, height: 64 }) : null)));
  }

  async function merge(ident) {
    if (!mergeSource || mergeSource === ident.identity_id) {
      mergeSource = mergeSource === ident.identity_id ? null : ident.identity_id;
      render();
      if (mergeSource) toast(`Merge ${mergeSource}: go to the identity to merge it into and press m (Esc cancels)`);
      return;
    }
    const source = bundle.identities.find((i) => i.identity_id === mergeSource);
    const content = h(
      "div",
      { class: "side-by-side" },
      h("div", {}, h("h3", { text: `${source.identity_id} (merged away)` }), faceStrip(source)),
      h("div", {}, h("h3", { text: `${ident.identity_id} (kept)` }), faceStrip(ident)),
    );
    const ok = await dialog(`Merge ${source.identity_id} into ${ident.identity_id}?`, content, [
      { label: "Cancel", value: null },
      { label: "Merge", value: "merge", primary: true },
    ]);
    const from = mergeSource;
    mergeSource = null;
    if (ok !== "merge") return render();
    await correction(`${runPath}/identities/merge`, { target_identity_id: ident.identity_id, source_identity_id: from }, `merged ${from} into ${ident.identity_id}`, false);
  }

  function focusedFace(ident) {
    const f = (ident.faces || [])[faceFocus];
    if (!f) toast("no face selected (h / l move between faces)", "error");
    return f;
  }

  async function split(ident) {
    const f = focusedFace(ident);
    if (!f) return;
    if (ident.tracks.length < 2) return toast("a single-track identity cannot be split; exclude the face instead", "error");
    await correction(`${runPath}/identities/split`, { track_ids: [f.track_id] }, `track ${f.track_id} is now its own identity`, false);
  }

  async function exclude(ident) {
    const f = focusedFace(ident);
    if (!f) return;
    await correction(`${runPath}/assignments/face_exclusion`, { face_id: f.face_id, excluded: !f.excluded }, `${f.face_id} ${f.excluded ? "included again" : "excluded"}`, false);
  }

  async function move(ident) {
    const f = focusedFace(ident);
    if (!f) return;
    const target = await prompt(`Move track ${f.track_id} to which identity?`, { label: "Identity", options: bundle.identities.filter((i) => i.identity_id !== ident.identity_id).map((i) => i.identity_id) });
    if (!target) return;
    await correction(`${runPath}/tracks/${f.track_id}/move`, { to_identity_id: target }, `track ${f.track_id} moved to ${target}`, false);
  }

  async function undo() {
    const ident = current();
    await api(`${runPath}/corrections/undo`, { method: "POST", json: {} });
    await load(ident ? ident.identity_id : undefined);
    toast("undone");
  }

  keys([
    { keys: ["j", "ArrowDown"], help: "next identity", run: () => bundle && select(focus + 1) },
    { keys: ["k", "ArrowUp"], help: "previous identity", run: () => bundle && select(focus - 1) },
    { keys: ["l", "ArrowRight"], help: "next face", run: () => { faceFocus = Math.min(faceFocus + 1, (current()?.faces || []).length - 1); render(); } },
    { keys: ["h", "ArrowLeft"], help: "previous face", run: () => { faceFocus = Math.max(faceFocus - 1, 0); render(); } },
    { keys: ["1", "2", "3", "4", "5", "6", "7", "8", "9"], help: "accept suggestion 1-9 (then on to the next identity)", run: (ev) => act(() => accept(current(), Number(ev.key) - 1)) },
    { keys: ["a"], help: "assign to a cast member (or create one)", run: () => act(() => assignPrompt(current())) },
    { keys: ["g"], help: "guest (every selected identity, when some are)", run: () => act(() => (picked.size ? markPicked("guest") : mark(current(), "guest"))) },
    { keys: ["G"], help: "guest, with a name", run: () => act(() => guestNamed(current())) },
    { keys: ["n"], help: "not a face (every selected identity, when some are)", run: () => act(() => (picked.size ? markPicked("not_face") : mark(current(), "not_face"))) },
    { keys: [" "], help: "select the identity for a bulk action (or click its box)", run: () => bundle && togglePick(current()) },
    { keys: ["A"], help: "select every identity with no name and no likely cast match", run: () => bundle && pickStrangers() },
    { keys: ["M"], help: "merge with the first identity it looks like (one key per fragment)", run: () => act(() => mergeTop(current())) },
    { keys: ["r"], help: 'reject the top suggestion ("not X")', run: () => act(() => reject(current())) },
    { keys: ["m"], help: "merge: press on one identity, then on the one to keep (the selected ones: into this one)", run: () => act(() => (picked.size ? mergePicked(current()) : merge(current()))) },
    { keys: ["s"], help: "split the selected face's track into its own identity", run: () => act(() => split(current())) },
    { keys: ["v"], help: "move the selected face's track to another identity", run: () => act(() => move(current())) },
    { keys: ["x"], help: "exclude (or include again) the selected face", run: () => act(() => exclude(current())) },
    { keys: ["u"], help: "undo the last correction", run: () => act(undo) },
    { keys: ["f"], help: "restore a junk or extra identity (it is a face that counts), or take that back", run: () => act(() => restore(current())) },
    { keys: ["t"], help: "screen time page", run: () => (location.href = `${ep}/screentime?run_id=${encodeURIComponent(run)}`) },
    { keys: ["Escape"], help: "cancel a merge, clear the selection", run: () => { mergeSource = null; picked.clear(); if (bundle) render(); } },
  ]);

  guarded(() => load()).then(() => {
    if (bundle && !bundle.identities.length) setMain(h("p", { text: "No identities in this run yet." }));
  });
})();
