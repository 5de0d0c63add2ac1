"use strict";
// Screen time: seconds per cast member (and unnamed identity) as bars, who is on screen when as a
// timeline; a click (or Enter on the timeline) shows that moment's frame with its named boxes.
(() => {
  const { api, h, svg, guarded, keys, fmtS, setMain, body, root } = SA;
  const ep = body.dataset.ep;
  const run = body.dataset.run;
  let report = null;
  let cursor = 0;

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
        d.intervals.map(([a, b]) => svg("rect", { x: x(a), width: Math.max(1, x(b) - x(a)), y: 3, height: rowH - 6, class: d.named ? "span named" : "span unnamed" }, svg("title", {}, `${d.label}: ${fmtS(a)}–${fmtS(b)}`))),
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
    const img = h("img", { src: `${root}episodes/${ep}/timestamp/${t}/preview?run_id=${encodeURIComponent(run)}`, alt: `Frame at ${fmtS(t)} with named boxes`, class: "frame" });
    const on = rows().filter((r) => r.intervals.some(([a, b]) => a <= t && t < b)).map((r) => r.label);
    document.getElementById("preview").replaceChildren(h("p", { text: `${fmtS(t)}: ${on.length ? on.join(", ") : "nobody"}` }), img);
  }

  async function load() {
    report = await api(`episodes/${ep}/runs/${encodeURIComponent(run)}/screentime`);
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
      h("div", { class: "scroll" }, timeline(data)),
      h("div", { id: "preview", "aria-live": "polite" }, h("p", { class: "muted", text: "Click the timeline (or focus it, move with the arrows, press Enter) to see that frame." })),
    );
  }

  keys([
    { keys: ["r"], help: "back to the review", run: () => (location.href = `../${ep}?run_id=${encodeURIComponent(run)}`) },
    { keys: ["f"], help: "focus the timeline", run: () => document.querySelector("svg.timeline")?.focus() },
  ]);
  guarded(load);
})();
