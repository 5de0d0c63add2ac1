"use strict";
// Episodes: every episode in the data dir (API, CLI and catalog runs alike), each stage's state, live
// progress of a running job (server-sent events), and starting or canceling a job.
(() => {
  const { api, h, toast, guarded, keys, setMain, root } = SA;
  const STAGES = ["detect_track", "faces_embed", "cluster", "naming", "audio", "screentime"];
  const JOB_STAGES = ["detect_track", "faces_embed", "cluster", "audio", "screentime"]; // naming runs with cluster and screentime
  const streams = new Map();

  function stageChips(status) {
    return h(
      "ol",
      { class: "stages", "aria-label": "Stages" },
      STAGES.map((name) => {
        const s = status.stages.find((x) => x.stage === name) || {};
        return h("li", { class: `chip ${s.state || "none"}`, title: s.error || "" }, name.replace("_", " "), h("span", { class: "sr", text: `: ${s.state || "not run"}` }));
      }),
    );
  }

  function nextStage(status) {
    for (const name of JOB_STAGES) {
      const s = status.stages.find((x) => x.stage === name);
      if (!s || s.state !== "succeeded") return name;
    }
    return "screentime";
  }

  function progressText(job) {
    const p = job.progress;
    if (!p) return `${job.state}`;
    const pct = p.frames_total ? Math.round((100 * p.frames_done) / p.frames_total) : null;
    return `${job.state}: ${p.phase}${p.step ? " " + p.step : ""}${pct !== null ? ` ${pct}%` : ""}`;
  }

  function follow(epId, jobId, cell) {
    if (streams.has(epId)) streams.get(epId).close();
    const es = new EventSource(`${root}episodes/${epId}/events`);
    streams.set(epId, es);
    const onEvent = (ev) => {
      const job = JSON.parse(ev.data);
      cell.querySelector(".progress-text").textContent = progressText(job);
      const bar = cell.querySelector("progress");
      const p = job.progress;
      if (bar && p && p.frames_total) {
        bar.max = p.frames_total;
        bar.value = p.frames_done;
      }
    };
    es.addEventListener("progress", onEvent);
    es.addEventListener("done", (ev) => {
      onEvent(ev);
      es.close();
      streams.delete(epId);
      setTimeout(() => guarded(load), 300);
    });
    es.onerror = () => {
      es.close();
      streams.delete(epId);
    };
  }

  async function start(epId, stage) {
    const job = await api(`episodes/${epId}/runs/main/jobs/${stage}`, { method: "POST", json: {} });
    toast(`${stage} started (${job.job_id})`);
    await load();
  }

  async function cancel(jobId) {
    await api(`jobs/${jobId}/cancel`, { method: "POST", json: {} });
    toast(`canceling ${jobId}`);
  }

  function row(ep, status) {
    const active = status.active_job;
    const stageSelect = h("select", { "aria-label": `Stage to run for ${ep.ep_id}` }, JOB_STAGES.map((s) => h("option", { value: s, selected: s === nextStage(status), text: s.replace("_", " ") })));
    const jobCell = h(
      "td",
      { class: "job" },
      active
        ? [h("progress", { max: 1, value: 0, "aria-label": "progress" }), h("span", { class: "progress-text", text: progressText(active) }), " ", h("button", { type: "button", onclick: () => guarded(() => cancel(active.job_id)), text: "Cancel" })]
        : [stageSelect, " ", h("button", { type: "button", class: "start", onclick: () => guarded(() => start(ep.ep_id, stageSelect.value)), text: "Start" })],
    );
    if (active) follow(ep.ep_id, active.job_id, jobCell);
    const done = status.stages.find((s) => s.stage === "cluster")?.state === "succeeded";
    return h(
      "tr",
      { dataset: { ep: ep.ep_id } },
      h("th", { scope: "row" }, done ? h("a", { href: `episodes/${ep.ep_id}`, text: ep.ep_id }) : ep.ep_id, ep.title ? h("div", { class: "muted", text: ep.title }) : null),
      h("td", {}, stageChips(status)),
      jobCell,
      h("td", {}, done ? h("a", { href: `episodes/${ep.ep_id}/screentime`, text: "screen time" }) : "–", " ", h("a", { href: `shows/${ep.show_slug}`, text: ep.show_slug })),
    );
  }

  async function load() {
    const list = await api("episodes");
    const statuses = await Promise.all(list.episodes.map((e) => api(`episodes/${e.ep_id}/runs/main/state`).catch(() => ({ stages: [], active_job: null }))));
    const table = h(
      "table",
      { class: "episodes" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Episode" }), h("th", { scope: "col", text: "Stages (run main)" }), h("th", { scope: "col", text: "Job" }), h("th", { scope: "col", text: "Links" }))),
      h("tbody", {}, list.episodes.map((e, k) => row(e, statuses[k]))),
    );
    setMain(list.episodes.length ? h("div", { class: "scroll" }, table) : h("p", { text: "No episodes yet: run `screenalytics run` on this data dir, or create one through the API." }));
  }

  keys([{ keys: ["R"], help: "reload", run: () => guarded(load) }]);
  guarded(load);
})();
