/* hooknb run-history page.
 *
 * Renders the server's snapshot (embedded in the page, then polled from `hooknb/?format=json`)
 * and calls the hooknb JSON API for the buttons. Everything is built with DOM APIs and
 * textContent: no string from outside (bodies, headers, names, URLs) ever becomes markup, and
 * no link is ever made from one. Plain ES2020, no dependencies, no build step.
 */
"use strict";
(() => {
  const boot = JSON.parse(document.getElementById("hooknb-data").textContent);
  const cfg = boot.config;
  const DEFAULT_LIMIT = boot.snapshot.filters.limit;
  const HIDDEN_POLL_MS = 15000;
  const FETCH_TIMEOUT_MS = 20000; // a hung request must not stop the polling for good
  // Cards built before the first paint; the rest of a list follows in the next task, so the
  // first screen does not wait for a hundred cards below it (bench/page.py measures it).
  const FIRST_CARDS = 8;

  const state = {
    data: boot.snapshot,
    text: null, // the last polled snapshot as text: an unchanged one is not re-rendered
    filters: { workflow: boot.snapshot.filters.workflow, status: boot.snapshot.filters.status },
    limit: boot.snapshot.filters.limit,
    before: boot.snapshot.before || "", // the page of runs shown: those older than this run id
    kept: { open: new Set(), focused: null }, // what render() restores in cards made later
    busy: new Map(), // "action:target" -> label, while the API call runs (survives re-renders)
    flash: new Set(), // run ids to highlight for a moment (a resubmitted run)
    timer: null,
    inFlight: false,
    again: false,
    failures: 0,
    updated: null,
  };

  const role = (name) => document.querySelector(`[data-role="${name}"]`);

  // ------------------------------------------------------------------ DOM helpers

  /** h("tag", {class, data: {camelCase: v}, attr: v, onclick}, ...children): an element. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "data") {
        for (const [k, v] of Object.entries(value)) {
          if (v !== null && v !== undefined) el.dataset[k] = String(v);
        }
      } else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child)); // strings become text nodes
    }
    return el;
  }

  const cls = (value) => String(value || "").replace(/[^A-Za-z0-9_-]/g, "");

  // ------------------------------------------------------------------ formatting

  const pad = (n) => String(n).padStart(2, "0");

  function fmtTime(epoch) {
    if (epoch === null || epoch === undefined) return "—";
    const d = new Date(epoch * 1000);
    const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (d.toDateString() === new Date().toDateString()) return hms;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}`;
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
    const s = Math.max(0, seconds);
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function fmtSize(n) {
    if (n === null || n === undefined) return "";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function when(epoch) {
    if (epoch === null || epoch === undefined) return h("span", { class: "muted" }, "—");
    const d = new Date(epoch * 1000);
    return h("time", { datetime: d.toISOString(), title: d.toString() }, fmtTime(epoch));
  }

  /** A span whose text the ticker keeps current: "times out in 58 s", "for 12 s". */
  function relative(kind, epoch) {
    const el = h("span", { class: "rel", data: { [kind]: epoch } });
    updateRelative(el, Date.now() / 1000);
    return el;
  }

  function updateRelative(el, now) {
    if (el.dataset.deadline !== undefined) {
      const left = Number(el.dataset.deadline) - now;
      el.textContent =
        left >= 0 ? `times out in ${fmtDuration(left)}` : `deadline passed ${fmtDuration(-left)} ago`;
    } else if (el.dataset.since !== undefined) {
      el.textContent = `for ${fmtDuration(now - Number(el.dataset.since))}`;
    }
  }

  function badge(status, extra) {
    const text = status || "—";
    return h("span", { class: `badge s-${cls(text)}`, ...(extra || {}) }, text);
  }

  function code(text, className) {
    return h("code", { class: className || "" }, text === null || text === undefined ? "—" : text);
  }

  function preBlock(clipped, what) {
    if (!clipped) return null;
    const note = clipped.truncated
      ? h(
          "p",
          { class: "muted small" },
          clipped.size
            ? `${what} cut here: ${clipped.size.toLocaleString()} characters in all`
            : `${what} too large to report in full`,
        )
      : null;
    return [clipped.text ? h("pre", { class: "value" }, clipped.text) : null, note];
  }

  /** A callback's meta line: its content type and size, or that it is secure. */
  function bodyMeta(body, contentType) {
    if (body && body.kind === "secured") return " · secure outputs";
    return ` · ${contentType || "no content type"} · ${fmtSize(body.size)}`;
  }

  function bodyBlock(body) {
    if (body && body.kind === "secured") {
      // A step or trigger that keeps its outputs secure (secureData): Logic Apps' words.
      return h("p", { class: "muted secured", data: { bodyKind: "secured" } }, body.text);
    }
    if (!body || body.kind === "empty") {
      return h("p", { class: "muted body-empty", data: { bodyKind: "empty" } }, "(empty body)");
    }
    if (body.kind === "binary") {
      return h(
        "p",
        { class: "binary", data: { bodyKind: "binary" } },
        `binary body · ${fmtSize(body.size)} · ${body.contentType || "no content type"}`,
      );
    }
    return [
      h("pre", { class: "body", data: { bodyKind: body.kind } }, body.text),
      body.truncated
        ? h(
            "p",
            { class: "muted small truncated" },
            `showing the first ${fmtSize(new Blob([body.text]).size)} of ${fmtSize(body.size)}`,
          )
        : null,
    ];
  }

  function pairsTable(pairs, headings) {
    return h(
      "table",
      { class: "pairs" },
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        pairs.map(([name, value]) => h("tr", {}, h("th", {}, name), h("td", {}, code(value)))),
      ),
    );
  }

  /** A <details> whose open state survives re-renders (keyed by `key`). */
  function details(key, summary, ...content) {
    return h("details", { data: { key } }, h("summary", {}, summary), ...content);
  }

  function callText(call) {
    if (!call) return h("span", { class: "muted" }, "—");
    const outcome =
      call.statusCode !== null && call.statusCode !== undefined
        ? h(
            "span",
            { class: `http ${call.statusCode < 300 ? "ok" : "bad"}` },
            String(call.statusCode),
          )
        : h("span", { class: `http ${call.state === "failed" ? "bad" : "pending"}` }, call.state);
    return h(
      "span",
      { class: "call", data: { callPurpose: call.purpose, callState: call.state } },
      // A secure request (no method) shows only the text that stands for it.
      code(call.method || !call.uri ? `${call.method || "?"} ${call.uri || ""}` : call.uri, "url"),
      " → ",
      outcome,
      " ",
      h("span", { class: "muted" }, "at ", when(call.finished || call.created)),
      call.attempts > 1 ? h("span", { class: "muted" }, ` · ${call.attempts} attempts`) : null,
      call.error ? h("div", { class: "error" }, call.error) : null,
    );
  }

  function actionButton(action, target, label, title, className) {
    const busy = state.busy.get(`${action}:${target}`);
    return h(
      "button",
      {
        type: "button",
        class: `btn ${className || ""}`,
        data: { action, target },
        title,
        disabled: busy !== undefined,
        "aria-label": title,
      },
      busy || label,
    );
  }

  // ------------------------------------------------------------------ sections

  function renderSummary(status) {
    const items = [
      ["workflows", "workflows"],
      ["enabledTriggers", "enabled triggers"],
      ["runs", "runs"],
      ["openWaits", "open waits"],
      ["pendingCalls", "pending calls"],
      ["pendingDeliveries", "undelivered"],
      ["connectedKernels", "kernels connected"],
    ];
    role("summary").replaceChildren(
      ...items.map(([key, label]) =>
        h("div", { class: `pill stat-${key}`, data: { stat: key } }, h("b", {}, status[key] ?? "—"), label),
      ),
      h("div", { class: "pill base" }, "callbacks at ", code(status.callbackBase || status.publicBase)),
      // Outside services cannot reach a loopback or internal address: say so where the URL is.
      ...(status.warning ? [h("div", { class: "pill warn", role: "note", data: { role: "url-warning" } }, status.warning)] : []),
    );
  }

  function setOptions(select, options, value) {
    const signature = JSON.stringify(options);
    if (select.dataset.options !== signature) {
      select.replaceChildren(...options.map(([v, label]) => h("option", { value: v }, label)));
      select.dataset.options = signature;
    }
    select.value = value;
  }

  function renderFilters(data) {
    const names = [...data.workflowNames];
    if (state.filters.workflow && !names.includes(state.filters.workflow)) {
      names.push(state.filters.workflow); // a filter for a workflow not seen (yet)
    }
    setOptions(
      document.querySelector('[data-filter="workflow"]'),
      [["", "All workflows"], ...names.map((n) => [n, n])],
      state.filters.workflow,
    );
    const total = Object.values(data.counts).reduce((a, b) => a + b, 0);
    setOptions(
      document.querySelector('[data-filter="status"]'),
      [
        ["", `All statuses (${total})`],
        ...data.statuses.map((s) => [s, `${s} (${data.counts[s] || 0})`]),
      ],
      state.filters.status,
    );
  }

  function renderWorkflows(list) {
    const root = role("workflows");
    if (!list.length) {
      root.replaceChildren(
        h(
          "p",
          { class: "empty" },
          state.filters.workflow
            ? "This server has not seen a workflow of that name."
            : "No workflows yet: define one with @hooknb.workflow in a notebook.",
        ),
      );
      return;
    }
    root.replaceChildren(...list.map(workflowCard));
  }

  function workflowCard(wf) {
    const t = wf.trigger;
    const kernel = !wf.client
      ? h("span", { class: "muted" }, "none attached")
      : wf.kernel === "gone"
        ? h(
            "span",
            { class: "muted" },
            code(wf.client),
            wf.lastSeen ? [" · gone, last seen ", when(wf.lastSeen)] : " · gone",
          )
        : h("span", {}, code(wf.client), wf.kernel === "connected" ? " · connected" : "");
    const rows = [["Kernel", kernel]];
    if (t) {
      rows.push(
        ["Trigger", h("span", {}, code(t.name), " (HTTP Webhook)")],
        ["Callback URL", code(t.callbackUrl, "url")],
        ["Last subscribe", callText(t.lastSubscribe)],
        ["Last unsubscribe", callText(t.lastUnsubscribe)],
      );
      if (t.error) rows.push(["Error", h("span", { class: "error" }, t.error)]);
    } else {
      rows.push(["Trigger", h("span", { class: "muted" }, "none: runs are started by hand")]);
    }
    return h(
      "article",
      {
        class: "card workflow",
        id: `workflow-${wf.name}`,
        data: { workflow: wf.name, triggerState: t ? t.state : "None" },
      },
      h(
        "header",
        {},
        h("h3", {}, wf.name),
        t ? badge(t.state, { data: { role: "trigger-state" } }) : badge("manual"),
        h(
          "span",
          { class: "actions" },
          wf.canDisable
            ? actionButton(
                "disable",
                wf.name,
                "Disable trigger",
                `Disable the trigger of ${wf.name} (unsubscribes)`,
                "danger",
              )
            : null,
          wf.canDelete
            ? actionButton(
                "delete",
                wf.name,
                "Delete",
                `Delete workflow ${wf.name} (unsubscribes, cancels its runs)`,
                "danger",
              )
            : null,
        ),
      ),
      h(
        "dl",
        { class: "kv" },
        rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
      t && t.subscription
        ? details(`wf:${wf.name}:subscription`, "Subscription (subscribe response body)", preBlock(t.subscription, "response"))
        : null,
      wf.triggerHistory && wf.triggerHistory.length
        ? details(
            `wf:${wf.name}:history`,
            `Trigger history (${wf.triggerHistory.length} latest)`,
            h(
              "ul",
              { class: "calls", data: { role: "trigger-history" } },
              wf.triggerHistory.map((e) =>
                h(
                  "li",
                  {},
                  badge(e.status),
                  " ",
                  when(e.received),
                  ` · HTTP ${e.code} · `,
                  e.runs && e.runs.length ? `runs ${e.runs.join(", ")}` : e.reason || "",
                ),
              ),
            ),
          )
        : null,
      t && t.calls.length
        ? details(
            `wf:${wf.name}:calls`,
            `Recent subscribe/unsubscribe calls (${t.calls.length})`,
            h(
              "ul",
              { class: "calls" },
              t.calls
                .slice()
                .reverse()
                .map((c) => h("li", {}, h("b", {}, c.purpose), " ", callText(c))),
            ),
          )
        : null,
    );
  }

  const STARTED_BY = { trigger: "trigger callback", manual: "run by hand", resubmit: "resubmitted" };

  /** Workflows whose kernel is gone: apart, folded, most recently seen first. */
  function renderGoneWorkflows(list) {
    const group = role("gone");
    group.hidden = !list.length;
    role("gone-summary").textContent =
      `${list.length} workflow${list.length === 1 ? "" : "s"} whose kernel is gone` +
      (list.length && list[0].lastSeen ? ` (last seen ${fmtTime(list[0].lastSeen)})` : "");
    role("gone-workflows").replaceChildren(...list.map(workflowCard));
  }

  /** Unfinished runs first: what waits on someone, or on a kernel. */
  function renderOpenRuns(data) {
    const list = data.openRuns || [];
    role("open-count").textContent = `(${list.length}${data.moreOpenRuns ? "+" : ""})`;
    const orphans = role("orphans");
    if (data.orphaned) {
      const scope = state.filters.workflow ? ` of ${state.filters.workflow}` : "";
      orphans.replaceChildren(
        h(
          "p",
          { class: "notice warn", data: { role: "orphan-notice" } },
          data.orphaned === 1
            ? `1 run${scope} waits with no kernel: run the cell that defines its workflow to ` +
                "continue it, or end it here. "
            : `${data.orphaned} runs${scope} wait with no kernel: run the cells that define ` +
                "their workflows to continue them, or end them here. ",
          actionButton(
            "cancel-orphaned",
            state.filters.workflow || "*",
            `End ${data.orphaned} run${data.orphaned === 1 ? "" : "s"} whose kernel is gone`,
            `Cancel every unfinished run${scope} that no kernel runs (no kernel is needed)`,
            "danger",
          ),
        ),
      );
    } else {
      orphans.replaceChildren();
    }
    const root = role("open-runs");
    if (!list.length) {
      root.replaceChildren(h("p", { class: "empty" }, "Nothing running or waiting."));
      return;
    }
    fillCards(root, list, runCard);
  }

  /** ``root`` gets a card per item: the first few now, the rest right after the paint. */
  function fillCards(root, list, make) {
    root.replaceChildren(...list.slice(0, FIRST_CARDS).map(make));
    const rest = list.slice(FIRST_CARDS);
    const token = {};
    root.pending = token; // a newer render of this list replaces an older one's remainder
    if (!rest.length) return;
    // After the next frame is painted: the first screen shows before the rest is built.
    requestAnimationFrame(() =>
      setTimeout(() => {
        if (root.pending !== token) return;
        root.append(...rest.map(make));
        restore(root);
      }, 0),
    );
  }

  /** Reopen the details and refocus the control the person had, inside ``scope``. */
  function restore(scope) {
    const { open, focused } = state.kept;
    for (const d of scope.querySelectorAll("details[data-key]")) {
      if (open.has(d.dataset.key)) d.open = true;
    }
    if (focused && document.activeElement === document.body) {
      const again = scope.querySelector(focused);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function renderRuns(data) {
    const root = role("runs");
    // An unfinished run is shown once, above.
    const above = new Set((data.openRuns || []).map((r) => r.id));
    const list = data.runs.filter((r) => !above.has(r.id));
    const page = state.before ? "older runs" : "newest first";
    role("runs-count").textContent = `(${list.length}${data.moreRuns ? "+" : ""}, ${page})`;
    role("more").hidden = !data.moreRuns;
    role("newest").hidden = !state.before;
    if (!list.length) {
      const filtered = state.filters.workflow || state.filters.status;
      root.replaceChildren(
        h(
          "p",
          { class: "empty" },
          data.runs.length ? "Every run here is open: see above." : filtered ? "No runs match these filters." : "No runs yet.",
        ),
      );
      return;
    }
    fillCards(root, list, runCard);
  }

  function runCard(run) {
    const started = run.started ?? run.created;
    const timing = run.ended
      ? h("span", {}, "took ", fmtDuration(run.ended - started))
      : relative("since", started);
    const inputs = run.triggerInputs;
    return h(
      "article",
      {
        class: `card run${state.flash.has(run.id) ? " flash" : ""}`,
        id: `run-${run.id}`,
        data: { run: run.id, runStatus: run.status, runWorkflow: run.workflow },
      },
      h(
        "header",
        {},
        badge(run.status, { data: { role: "run-status" } }),
        h("span", { class: "wf" }, run.workflow),
        code(run.id, "run-id"),
        h(
          "span",
          { class: "meta" },
          STARTED_BY[run.startedBy] || run.trigger || "",
          run.waitingToStart ? " · waiting to start (concurrency limit)" : "",
          run.clientTrackingId && run.clientTrackingId !== run.id
            ? ` · tracking id ${run.clientTrackingId}`
            : "",
          " · started ",
          when(started),
          " · ",
          timing,
        ),
        h(
          "span",
          { class: "actions" },
          run.canCancel
            ? actionButton("cancel", run.id, "Cancel", `Cancel run ${run.id}`, "danger")
            : null,
          run.canResubmit
            ? actionButton(
                "resubmit",
                run.id,
                "Resubmit",
                `Resubmit: a new run with the trigger inputs of run ${run.id}`,
              )
            : null,
        ),
      ),
      run.kernel === "gone"
        ? h(
            "p",
            { class: "note orphan", data: { role: "no-kernel" } },
            `${run.status.toLowerCase()}, no kernel: run the cell that defines `,
            code(run.workflow),
            " to continue (or cancel it: no kernel is needed)",
          )
        : run.status === "Queued"
          ? h("p", { class: "note" }, `Queued: it starts when a kernel runs workflow ${run.workflow}.`)
          : null,
      run.error
        ? h("p", { class: `${run.status === "Cancelled" ? "muted" : "error"} run-error` }, run.error)
        : null,
      run.steps.length ? stepsTable(run) : h("p", { class: "muted small" }, "No steps yet."),
      h(
        "div",
        { class: "extras" },
        inputs
          ? details(
              `run:${run.id}:inputs`,
              h(
                "span",
                {},
                "Trigger inputs ",
                h("a", { href: `#callback-${inputs.id}` }, `callback #${inputs.id}`),
                h("span", { class: "muted" }, bodyMeta(inputs.body, inputs.contentType)),
              ),
              bodyBlock(inputs.body),
            )
          : null,
        run.result ? details(`run:${run.id}:result`, "Result", preBlock(run.result, "result")) : null,
      ),
    );
  }

  function stepsTable(run) {
    return h(
      "table",
      { class: "steps" },
      h(
        "thead",
        {},
        h("tr", {}, ["Step", "Status", "Started", "Duration", "Details"].map((t) => h("th", {}, t))),
      ),
      h(
        "tbody",
        {},
        run.steps.map((step) => {
          const w = step.wait;
          const open = w && ["open", "subscribing", "waiting"].includes(w.state);
          const info = [];
          if (open && w.deadline) info.push(h("div", {}, "waiting for a callback · ", relative("deadline", w.deadline)));
          if (w && w.outcome) info.push(h("div", {}, "wait ", badge(w.outcome), w.callback ? [" · ", h("a", { href: `#callback-${w.callback}` }, `callback #${w.callback}`)] : null));
          const url = step.callbackUrl || (w && w.callbackUrl);
          if (url) info.push(h("div", { class: "kvline" }, h("span", { class: "k" }, "callback URL "), code(url, "url")));
          if (w) {
            info.push(h("div", { class: "kvline" }, h("span", { class: "k" }, "subscribe "), callText(w.lastSubscribe)));
            if (w.lastUnsubscribe || !open) {
              info.push(h("div", { class: "kvline" }, h("span", { class: "k" }, "unsubscribe "), callText(w.lastUnsubscribe)));
            }
          }
          if (step.error) info.push(h("div", { class: "error" }, step.error));
          if (w && w.error && w.error !== step.error) info.push(h("div", { class: "error" }, w.error));
          if (step.outputs) {
            info.push(
              details(
                `run:${run.id}:step:${step.name}:outputs`,
                `Outputs${step.statusCode ? ` (HTTP ${step.statusCode})` : ""}`,
                preBlock(step.outputs, "body"),
              ),
            );
          }
          const duration = step.end
            ? fmtDuration(step.end - step.start)
            : step.start
              ? relative("since", step.start)
              : "";
          return h(
            "tr",
            { data: { step: step.name, stepStatus: step.status } },
            h("th", {}, step.name, h("div", { class: "muted small" }, step.type || "")),
            h("td", {}, badge(step.status)),
            h("td", {}, when(step.start)),
            h("td", {}, duration || "—"),
            h("td", { class: "info" }, info.length ? info : h("span", { class: "muted" }, "—")),
          );
        }),
      ),
    );
  }

  const KIND = { trigger: "trigger", wait: "action callback", manual: "manual run", resubmit: "resubmit" };

  function renderCallbacks(list) {
    const root = role("callbacks");
    role("callbacks-count").textContent = `(latest ${list.length})`;
    if (!list.length) {
      root.replaceChildren(h("p", { class: "empty" }, "No callbacks stored yet."));
      return;
    }
    root.replaceChildren(...list.map(callbackCard));
  }

  function callbackCard(cb) {
    const queries = Object.entries(cb.queries || {}).map(([k, v]) => [
      k,
      Array.isArray(v) ? v.join(", ") : String(v),
    ]);
    return h(
      "article",
      {
        class: "card callback",
        id: `callback-${cb.id}`,
        data: { callback: cb.id, callbackKind: cb.kind },
      },
      h(
        "header",
        {},
        h("span", { class: "cb-id" }, `#${cb.id}`),
        h("span", { class: "method" }, cb.method),
        h("span", { class: `kind k-${cls(cb.kind)}` }, KIND[cb.kind] || cb.kind),
        h("span", { class: "wf" }, cb.workflow || "?"),
        cb.step ? h("span", { class: "muted" }, "step ", code(cb.step)) : null,
        cb.run ? h("a", { href: `#run-${cb.run}`, class: "run-link" }, `run ${cb.run}`) : null,
        h(
          "span",
          { class: "meta" },
          when(cb.received),
          bodyMeta(cb.body, cb.contentType),
        ),
        h(
          "span",
          { class: "actions" },
          cb.kind !== "wait" && cb.run
            ? actionButton(
                "resubmit",
                cb.run,
                "Resubmit",
                `Resubmit: a new run of ${cb.workflow} with this callback as its trigger inputs`,
              )
            : null,
        ),
      ),
      bodyBlock(cb.body),
      cb.body.kind === "secured"
        ? null
        : h(
            "div",
            { class: "extras" },
            details(`cb:${cb.id}:headers`, `Headers (${cb.headers.length})`, pairsTable(cb.headers, ["Name", "Value"])),
            queries.length
              ? details(`cb:${cb.id}:query`, `Query (${queries.length})`, pairsTable(queries, ["Name", "Value"]))
              : null,
          ),
    );
  }

  /** A selector for the focused control that still matches it once re-rendered. */
  function focusSelector() {
    const el = document.activeElement;
    if (!el || !el.closest) return null;
    const button = el.closest("button[data-action]");
    if (button) {
      const { action, target } = button.dataset;
      return `button[data-action="${CSS.escape(action)}"][data-target="${CSS.escape(target)}"]`;
    }
    const details = el.closest("details[data-key]");
    if (details && el.tagName === "SUMMARY") {
      return `details[data-key="${CSS.escape(details.dataset.key)}"] > summary`;
    }
    return null;
  }

  function render() {
    const data = state.data;
    // Re-rendering replaces the elements: keep what the person had opened and focused.
    const open = new Set(
      [...document.querySelectorAll("details[data-key][open]")].map((d) => d.dataset.key),
    );
    const focused = focusSelector();
    state.kept = { open, focused };
    renderSummary(data.status);
    renderFilters(data);
    renderOpenRuns(data);
    renderRuns(data);
    renderWorkflows(data.workflows);
    renderGoneWorkflows(data.goneWorkflows || []);
    renderCallbacks(data.callbacks);
    restore(document);
    document.title = `hooknb · ${data.status.openWaits} waiting · run history`;
  }

  // ------------------------------------------------------------------ messages

  function message(kind, text) {
    const box = role("messages");
    const item = h(
      "div",
      { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status", data: { role: "message", kind } },
      h("span", {}, text),
      h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
    );
    box.append(item);
    while (box.children.length > 5) box.firstElementChild.remove();
    if (kind !== "error") setTimeout(() => item.remove(), 8000);
  }

  async function readBody(response) {
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      return { error: text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300) };
    }
  }

  function errorText(response, body) {
    const detail = body && (body.error || body.message);
    let text = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
    if (detail) text += `: ${detail}`;
    if (response.status === 403) text += " (is the Jupyter session still logged in? reload the page)";
    return text;
  }

  // ------------------------------------------------------------------ polling

  function snapshotUrl() {
    const q = new URLSearchParams({ format: "json" });
    if (state.filters.workflow) q.set("workflow", state.filters.workflow);
    if (state.filters.status) q.set("status", state.filters.status);
    if (state.limit !== DEFAULT_LIMIT) q.set("limit", String(state.limit));
    if (state.before) q.set("before", state.before);
    return `${cfg.page}?${q}`;
  }

  function setLive(mode, detail) {
    const el = role("live");
    el.dataset.live = mode;
    const text = role("live-text");
    if (mode === "live") text.textContent = `live · updated ${fmtTime(state.updated)}`;
    else if (mode === "paused") text.textContent = "paused while the tab is hidden";
    else text.textContent = `not updating: ${detail} · retrying`;
    el.title = detail || "";
  }

  async function poll() {
    if (state.inFlight) {
      state.again = true;
      return;
    }
    clearTimeout(state.timer);
    state.inFlight = true;
    const url = snapshotUrl();
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-cache", // revalidate: an unchanged snapshot is a 304
        headers: { Accept: "application/json" },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(errorText(response, await readBody(response)));
      const text = await response.text();
      // A filter changed while this was in flight: drop the answer, the next poll is queued.
      if (url === snapshotUrl() && text !== state.text) {
        state.text = text;
        state.data = JSON.parse(text);
        render();
      }
      state.failures = 0;
      state.updated = Date.now() / 1000;
      setLive("live");
    } catch (err) {
      state.failures += 1;
      setLive("error", err.message || String(err));
    } finally {
      state.inFlight = false;
      if (state.again) {
        state.again = false;
        poll();
      } else {
        schedule();
      }
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    let delay = cfg.pollMs;
    if (document.hidden) delay = HIDDEN_POLL_MS;
    else if (state.failures) delay = Math.min(HIDDEN_POLL_MS, cfg.pollMs * 2 ** state.failures);
    state.timer = setTimeout(poll, delay);
  }

  // ------------------------------------------------------------------ actions

  function xsrfToken() {
    // jupyter_server checks the X-XSRFToken header against the _xsrf cookie this page set.
    const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : cfg.xsrf;
  }

  const ACTIONS = {
    disable: (t) => ({
      method: "DELETE",
      path: `workflows/${encodeURIComponent(t)}/trigger`,
      busy: "Disabling…",
      done: (r) => `Trigger of ${t}: ${(r.trigger && r.trigger.state) || "disabled"}.`,
    }),
    delete: (t) => ({
      method: "DELETE",
      path: `workflows/${encodeURIComponent(t)}`,
      confirm: `Delete workflow ${t}? Its trigger unsubscribes and its unfinished runs are cancelled.`,
      busy: "Deleting…",
      done: (r) => `Workflow ${t} deleted (${(r.cancelled || []).length} runs cancelled).`,
    }),
    cancel: (t) => ({
      method: "POST",
      path: `runs/${encodeURIComponent(t)}/cancel`,
      busy: "Cancelling…",
      done: (r) => `Run ${t}: ${r.status || "cancelling"}.`,
    }),
    "cancel-orphaned": (t) => ({
      method: "POST",
      path: "runs/cancel",
      body: JSON.stringify(t === "*" ? { orphaned: true } : { orphaned: true, workflow: t }),
      busy: "Ending…",
      done: (r) => `Ended ${(r.cancelled || []).length} run(s) whose kernel was gone.`,
    }),
    resubmit: (t) => ({
      method: "POST",
      path: `runs/${encodeURIComponent(t)}/resubmit`,
      busy: "Resubmitting…",
      done: (r) => {
        if (r.run) {
          state.flash.add(r.run);
          setTimeout(() => state.flash.delete(r.run), 6000);
        }
        return `Resubmitted run ${t} as run ${r.run}.`;
      },
    }),
  };

  async function act(button) {
    const { action, target } = button.dataset;
    const spec = ACTIONS[action] && ACTIONS[action](target);
    if (!spec) return;
    const key = `${action}:${target}`;
    if (state.busy.has(key)) return;
    if (spec.confirm && !window.confirm(spec.confirm)) return;
    state.busy.set(key, spec.busy);
    button.disabled = true;
    button.textContent = spec.busy;
    try {
      const response = await fetch(cfg.api + spec.path, {
        method: spec.method,
        credentials: "same-origin",
        headers: {
          "X-XSRFToken": xsrfToken(),
          "Content-Type": "application/json",
          Accept: "application/json",
        },
        body: spec.method === "POST" ? spec.body || "{}" : undefined,
      });
      const body = await readBody(response);
      if (!response.ok) throw new Error(errorText(response, body));
      message("ok", spec.done(body));
    } catch (err) {
      message("error", `${action} ${target} failed: ${err.message || err}`);
    } finally {
      state.busy.delete(key);
      state.text = null; // re-render even if the snapshot did not change (the busy label)
      poll();
    }
  }

  // ------------------------------------------------------------------ wiring

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button && !button.disabled) act(button);
  });

  const form = role("filters");
  form.classList.add("js"); // the Apply button is for browsers without JS
  form.addEventListener("submit", (event) => event.preventDefault());
  /** New filters: keep them in the address bar (a link to this view) and fetch at once. */
  function applyFilters(filters) {
    state.filters = filters;
    state.limit = DEFAULT_LIMIT;
    state.before = "";
    for (const select of form.querySelectorAll("select[data-filter]")) {
      select.value = filters[select.dataset.filter];
    }
    const q = new URLSearchParams();
    if (filters.workflow) q.set("workflow", filters.workflow);
    if (filters.status) q.set("status", filters.status);
    history.replaceState(null, "", q.toString() ? `${cfg.page}?${q}` : cfg.page);
    poll();
  }
  for (const select of form.querySelectorAll("select[data-filter]")) {
    select.addEventListener("change", () =>
      applyFilters({ ...state.filters, [select.dataset.filter]: select.value }),
    );
  }
  role("clear").addEventListener("click", (event) => {
    event.preventDefault();
    applyFilters({ workflow: "", status: "" });
  });
  // Pages by run id (newest first): each page is read from where it starts, however many
  // runs the store holds.
  role("more").addEventListener("click", () => {
    if (!state.data.nextBefore) return;
    state.before = state.data.nextBefore;
    poll();
    role("runs").scrollIntoView({ block: "start" });
  });
  role("newest").addEventListener("click", () => {
    state.before = "";
    poll();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      setLive("paused");
      schedule();
    } else {
      poll();
    }
  });
  setInterval(() => {
    const now = Date.now() / 1000;
    for (const el of document.querySelectorAll("[data-deadline], [data-since]")) updateRelative(el, now);
  }, 1000);

  render();
  // The first screen: built, and (in the next frame's callbacks, just before it is painted)
  // about to show; counted from the navigation's start (bench/page.py reads these).
  performance.mark("hooknb-first-render");
  requestAnimationFrame(() => performance.mark("hooknb-first-paint"));
  state.updated = Date.now() / 1000;
  setLive("live");
  schedule();
})();
