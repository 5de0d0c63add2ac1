"use strict";
// Show: cast members with their facebank faces (photos and confirmed clusters), photo upload, the
// not-cast bank, and the season table (episode x cast member, seconds and how each was named).
(() => {
  const { api, h, toast, guarded, keys, fmtS, setMain, slug, body, root } = SA;
  const show = body.dataset.show;
  const run = body.dataset.run;

  function chip(face) {
    const title = face.source === "photo" ? `photo ${face.photo || ""}` : `${face.ep_id} ${face.identity_id} ${face.face_id}`;
    return face.chip_url ? h("img", { src: root + face.chip_url.replace(/^\//, ""), alt: title, title, width: 56, height: 56, loading: "lazy" }) : h("span", { class: "noimg", text: "no chip", title });
  }

  function castSection(members, faces) {
    const byCast = {};
    for (const f of faces) if (f.kind === "cast") (byCast[f.cast_id] ||= []).push(f);
    const cards = members.map((m) => {
      const own = byCast[m.cast_id] || [];
      const input = h("input", { type: "file", accept: "image/*", multiple: true, "aria-label": `Photos of ${m.name}` });
      const upload = async () => {
        if (!input.files.length) return toast("choose photos first", "error");
        const form = new FormData();
        for (const f of input.files) form.append("files", f, f.name);
        const r = await api(`shows/${show}/cast/${m.cast_id}/faces`, { method: "POST", form });
        toast(`${r.added.length} face(s) added to ${m.name}`);
        await load();
      };
      return h(
        "section",
        { class: "cast-card" },
        h("h3", {}, m.name, h("small", { class: "muted", text: ` ${m.cast_id} · ${own.filter((f) => f.source === "photo").length} photo(s), ${own.filter((f) => f.source === "cluster").length} confirmed` })),
        h("div", { class: "faces" }, own.map(chip)),
        h("div", { class: "upload" }, input, h("button", { type: "button", onclick: () => guarded(upload), text: "Add photos" })),
      );
    });
    const add = h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); guarded(addMember); } }, h("label", {}, "New cast member ", h("input", { name: "name", required: true, "aria-label": "New cast member's name" })), " ", h("button", { type: "submit", text: "Add" }));
    async function addMember() {
      const name = add.querySelector("input").value.trim();
      if (!name) return;
      await api("shows", { method: "POST", json: { show_id: show, name: show } });
      await api(`shows/${show}/cast`, { method: "POST", json: { cast_id: slug(name), name } });
      await load();
    }
    return [h("h2", { text: "Cast and facebank" }), cards.length ? h("div", { class: "cast-grid" }, cards) : h("p", { class: "muted", text: "No cast members yet." }), add];
  }

  function notCast(faces) {
    const others = faces.filter((f) => f.kind !== "cast");
    if (!others.length) return [];
    const groups = {};
    for (const f of others) (groups[`${f.kind === "guest" ? "Guest" : "Not a face"}: ${f.label}`] ||= []).push(f);
    return [h("h2", { text: "Not cast (guests, not a face)" }), h("div", { class: "cast-grid" }, Object.entries(groups).map(([label, fs]) => h("section", { class: "cast-card" }, h("h3", { text: label }), h("div", { class: "faces" }, fs.map(chip)))))];
  }

  function season(table, members) {
    const cols = members.map((m) => m.cast_id);
    const cell = {};
    for (const r of table.rows) cell[`${r.ep_id}|${r.cast_id}`] = r;
    const head = h("tr", {}, h("th", { scope: "col", text: "Episode" }), members.map((m) => h("th", { scope: "col", text: m.name })), h("th", { scope: "col", text: "Unnamed" }), h("th", { scope: "col", text: "To review" }));
    const rows = table.episodes.map((e) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("a", { href: `../episodes/${e.ep_id}?run_id=${encodeURIComponent(run)}`, text: e.ep_id })),
        cols.map((c) => {
          const r = cell[`${e.ep_id}|${c}`];
          const title = r ? `${Math.round(r.share_of_episode * 1000) / 10}% of the episode, named ${r.named_by}${r.speaking_s ? `; speaking ${fmtS(r.speaking_s)} (${fmtS(r.both_s)} of it on screen)` : ""}` : "";
          return h("td", { class: r ? `num ${r.named_by}` : "num", title }, r ? fmtS(r.seconds) : "–", r && r.speaking_s ? h("div", { class: "speaks", text: `speaks ${fmtS(r.speaking_s)}` }) : null);
        }),
        h("td", { class: "num", text: fmtS(e.unnamed_s) }),
        h("td", { class: "num", text: String(e.needs_review) }),
      ),
    );
    const total = (c) => table.totals.find((t) => t.cast_id === c) || {};
    const totals = h(
      "tr",
      { class: "totals" },
      h("th", { scope: "row", text: "Season" }),
      cols.map((c) => h("td", { class: "num" }, fmtS(total(c).seconds || 0), total(c).speaking_s ? h("div", { class: "speaks", text: `speaks ${fmtS(total(c).speaking_s)}` }) : null)),
      h("td", {}),
      h("td", {}),
    );
    return [
      h("h2", {}, "Season screen time ", h("a", { href: `${root}shows/${show}/screentime?format=csv&run_id=${encodeURIComponent(run)}`, download: `${show}_season.csv`, text: "CSV" })),
      h("p", { class: "muted", text: "Seconds on screen (and speaking, where voices were heard). Italic: named automatically; bold: confirmed by a reviewer." }),
      h("div", { class: "scroll" }, h("table", { class: "season" }, h("thead", {}, head), h("tbody", {}, rows, totals))),
    ];
  }

  async function load() {
    let members = [];
    let faces = [];
    if ((await api("shows")).shows.some((s) => s.show_id === show)) {
      members = (await api(`shows/${show}/cast`)).cast;
      faces = (await api(`shows/${show}/facebank`)).faces;
    }
    const table = members.length ? await api(`shows/${show}/screentime?run_id=${encodeURIComponent(run)}`) : null;
    setMain(...castSection(members, faces), ...notCast(faces), ...(table ? season(table, members) : []));
  }

  keys([{ keys: ["R"], help: "reload", run: () => guarded(load) }]);
  guarded(load);
})();
