"use strict";
// Screen time: seconds per cast member (and unnamed identity) as bars, who is on screen and who
// speaks when as a timeline; a click (or Enter on the timeline) shows that moment's frame with its
// named boxes. Who speaks: each voice, who it was linked to and why, and a reviewer's assignment.
(() => {
  const { api, h, svg, guarded, keys, fmtS, setMain, toast, body, root } = SA;
  const ep = body.dataset.ep;
  const run = body.dataset.run;
  const show = body.dataset.show;
  let report = null;
  let cast = [];
  let cursor = 0;

  const castName = (castId) => (cast.find((c) => c.cast_id === castId) || {}).name || castId;
  const speakerName = (s) => (s.cast_id ? castName(s.cast_id) : s.identity_id || `${s.voice_id} (unnamed)`);

  function speechRows() {
    return report.speakers.map((s) => ({ label: `speaks: ${speakerName(s)}`, seconds: s.speech_s, intervals: s.intervals, named: false, speech: true }));
  }

  const WHY = {
    on_screen: (s) => `alone on screen ${fmtS(s.evidence_s)} while it spoke`,
    season: (s) => `alone on screen ${fmtS(s.evidence_s)} here, ${fmtS(s.season_s)} in the show's other episodes (same voice)`,
    voice_match: () => "the same voice a reviewer named in another episode",
    manual: () => "assigned by a reviewer",
  };

  async function assignVoice(voiceId, castId) {
    await api(`episodes/${ep}/runs/${encodeURIComponent(run)}/voices/${encodeURIComponent(voiceId)}/assign`, { method: "POST", json: { cast_id: castId || null } });
    toast(castId ? `${voiceId} is ${castName(castId)}` : `${voiceId}: back to the automatic link`);
    await load();
  }

  function voicesTable() {
    const head = h("tr", {}, ["Voice", "Speaks", "Who", "Why", "Assign"].map((t) => h("th", { scope: "col", text: t })));
    const body = report.speakers.map((s) => {
      const pick = h(
        "select",
        { "aria-label": `Assign ${s.voice_id} to a cast member`, dataset: { voice: s.voice_id }, onchange: (ev) => guarded(() => assignVoice(s.voice_id, ev.target.value)) },
        h("option", { value: s.cast_id || "", text: s.source === "manual" ? "— keep —" : "— choose —", selected: true }),
        cast.filter((c) => c.cast_id !== s.cast_id).map((c) => h("option", { value: c.cast_id, text: c.name })),
        s.source === "manual" ? h("option", { value: "", text: "automatic (clear)" }) : null,
      );
      return h(
        "tr",
        { dataset: { voice: s.voice_id } },
        h("td", { text: s.voice_id }),
        h("td", { class: "num", text: fmtS(s.speech_s) }),
        h("td", { class: s.source === "manual" ? "manual" : s.cast_id || s.identity_id ? "auto" : "", text: speakerName(s) }),
        h("td", { text: s.source ? WHY[s.source](s) : "never the only face on screen while it spoke" }),
        h("td", {}, cast.length ? pick : h("span", { class: "muted", text: "no cast yet" })),
      );
    });
    return h("table", { class: "voices" }, h("thead", {}, head), h("tbody", {}, body));
  }

  function speakingTable() {
    const rows = report.metrics.filter((m) => m.speaking_s > 0).map((m) => [m.name, m.speaking_s, m.both_s, m.voice_only_s]);
    for (const i of report.identity_speech || []) {
      const ident = report.identities.find((x) => x.identity_id === i.identity_id);
      if (ident && !ident.cast_id) rows.push([i.identity_id, i.speaking_s, i.both_s, i.voice_only_s]);
    }
    const head = h("tr", {}, ["Who", "Speaking", "While on screen", "Voice only"].map((t) => h("th", { scope: "col", text: t })));
    return h("table", { class: "speaking" }, h("thead", {}, head), h("tbody", {}, rows.sort((a, b) => b[1] - a[1]).map(([n, ...v]) => h("tr", {}, h("td", { text: n }), v.map((x) => h("td", { class: "num", text: fmtS(x) }))))));
  }

  function rows() {
    const out = report.timeline.filter((r) => r.name !== "Unassigned" && r.intervals.length).map((r) => ({ label: r.name, seconds: (report.metrics.find((m) => m.cast_id === r.cast_id) || {}).visual_s || 0, intervals: r.intervals, named: true }));
    for (const i of report.identities) {
      if (!i.cast_id) out.push({ label: `${i.identity_id}${i.kind === "guest" ? " (guest)" : ""}`, seconds: i.visual_s, intervals: i.intervals, named: false });
    }
    return out.sort((a, b) => b.seconds - a.seconds);
  }

  function bars(data) {
    // drawn at the width it is shown at (up to 640 px), so labels and values stay readable on a phone
    const w = Math.max(300, Math.min(640, document.getElementById("main").clientWidth - 8));
    const rowH = 26, left = Math.min(170, Math.round(w * 0.3)), max = Math.max(1, ...data.map((d) => d.seconds));
    const g = data.map((d, k) =>
      svg(
        "g",
        { transform: `translate(0,${k * rowH})` },
        svg("text", { x: left - 8, y: 17, "text-anchor": "end", class: "label" }, d.label),
        svg("rect", { x: left, y: 4, height: rowH - 8, width: Math.max(1, ((w - left - 70) * d.seconds) / max), class: d.named ? "bar named" : "bar unnamed" }),
        svg("text", { x: left + 6 + ((w - left - 70) * d.seconds) / max, y: 17, class: "value" }, fmtS(d.seconds)),
      ),
    );
    return svg("svg", { viewBox: `0 0 ${w} ${Math.max(rowH, data.length * rowH)}`, class: "chart", role: "img", "aria-label": "Seconds on screen per person" }, g);
  }

  function timeline(data) {
    const w = 900, rowH = 20, left = 170, top = 22, dur = report.math.video_duration_s || 1;
    const x = (t) => left + ((w - left - 10) * t) / dur;
    const height = top + data.length * rowH + 6;
    const ticks = [];
    const step = dur > 600 ? 60 : dur > 120 ? 30 : dur > 30 ? 10 : 5;
    for (let t = 0; t <= dur; t += step) ticks.push(svg("g", {}, svg("line", { x1: x(t), x2: x(t), y1: top - 4, y2: height, class: "tick" }), svg("text", { x: x(t), y: 12, "text-anchor": "middle", class: "tick-label" }, fmtS(t))));
    const lanes = data.map((d, k) =>
      svg(
        "g",
        { transform: `translate(0,${top + k * rowH})` },
        svg("text", { x: left - 8, y: 14, "text-anchor": "end", class: "label" }, d.label),
        d.intervals.map(([a, b]) => svg("rect", { x: x(a), width: Math.max(1, x(b) - x(a)), y: 3, height: rowH - 6, class: d.speech ? "span speech" : d.named ? "span named" : "span unnamed" }, svg("title", {}, `${d.label}: ${fmtS(a)}–${fmtS(b)}`))),
      ),
    );
    const line = svg("line", { id: "cursor", x1: x(cursor), x2: x(cursor), y1: top - 4, y2: height, class: "cursor" });
    const el = svg("svg", { viewBox: `0 0 ${w} ${height}`, class: "timeline", tabindex: 0, role: "slider", "aria-label": "Timeline: arrows move, Enter shows the frame", "aria-valuemin": 0, "aria-valuemax": Math.round(dur), "aria-valuenow": Math.round(cursor) }, ticks, lanes, line);
    el.addEventListener("click", (ev) => {
      const box = el.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * w;
      cursor = Math.max(0, Math.min(dur, ((px - left) / (w - left - 10)) * dur));
      moveCursor();
      preview();
    });
    el.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
        ev.preventDefault();
        ev.stopPropagation();
        cursor = Math.max(0, Math.min(dur, cursor + (ev.key === "ArrowRight" ? 1 : -1) * (ev.shiftKey ? 10 : 1)));
        moveCursor();
      } else if (ev.key === "Enter") {
        ev.preventDefault();
        preview();
      }
    });
    return el;
  }

  function moveCursor() {
    const dur = report.math.video_duration_s || 1;
    const el = document.getElementById("cursor");
    const px = 170 + ((900 - 170 - 10) * cursor) / dur;
    el.setAttribute("x1", px);
    el.setAttribute("x2", px);
    el.closest("svg").setAttribute("aria-valuenow", Math.round(cursor));
  }

  function preview() {
    const t = Math.round(cursor * 100) / 100;
    const img = h("img", { src: `${root}episodes/${ep}/runs/${encodeURIComponent(run)}/timestamp/${t}/preview`, alt: `Frame at ${fmtS(t)} with named boxes`, class: "frame" });
    const at = (r) => r.intervals.some(([a, b]) => a <= t && t < b);
    const on = rows().filter(at).map((r) => r.label);
    const speaking = report.speakers.filter(at).map(speakerName);
    const said = speaking.length ? ` · speaking: ${speaking.join(", ")}` : "";
    document.getElementById("preview").replaceChildren(h("p", { text: `${fmtS(t)}: ${on.length ? on.join(", ") : "nobody"}${said}` }), img);
  }

  async function load() {
    report = await api(`episodes/${ep}/runs/${encodeURIComponent(run)}/screentime`);
    const shows = report.speakers.length ? (await api("shows")).shows : [];
    cast = shows.some((x) => x.show_id === show) ? (await api(`shows/${show}/cast`)).cast : [];
    const data = rows();
    const total = report.math;
    setMain(
      h(
        "p",
        { class: "summary" },
        `${fmtS(total.video_duration_s)} of video · cast on screen ${fmtS(total.cast_union_coverage_s)} · `,
        h("a", { href: `${root}episodes/${ep}/runs/${encodeURIComponent(run)}/screentime.csv`, download: `${ep}_screentime.csv`, text: "CSV" }),
        " · ",
        h("a", { href: `../${ep}?run_id=${encodeURIComponent(run)}`, text: "review (r)" }),
      ),
      h("h2", { text: "Seconds on screen" }),
      h("div", { class: "scroll" }, bars(data)),
      h("h2", { text: "Timeline" }),
      h("div", { class: "scroll" }, timeline([...data, ...speechRows()])),
      h("div", { id: "preview", "aria-live": "polite" }, h("p", { class: "muted", text: "Click the timeline (or focus it, move with the arrows, press Enter) to see that frame." })),
      report.speakers.length ? [h("h2", { text: "Seconds speaking" }), h("div", { class: "scroll" }, speakingTable()), h("h2", { text: "Who speaks" }), h("div", { class: "scroll" }, voicesTable())] : null,
    );
  }

  keys([
    { keys: ["r"], help: "back to the review", run: () => (location.href = `../${ep}?run_id=${encodeURIComponent(run)}`) },
    { keys: ["f"], help: "focus the timeline", run: () => document.querySelector("svg.timeline")?.focus() },
  ]);
  guarded(load);
})();
