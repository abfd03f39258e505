// Live progress on a run's page: fetch the live part (summary, failures by cause, tab badges and rows, all
// rendered from one snapshot on the server) every 2 s while the run is active and swap it in whole, so
// that they always change together. What the admin was doing in it survives the swap: ticked boxes, an
// open confirmation and the focused control. Without JavaScript the page is still right when reloaded
// (it has a Refresh link).
(() => {
  const INTERVAL_MS = 2000;

  function current() {
    return document.querySelector("[data-run-progress]");
  }

  function keyOf(element, index) {
    return element.id || `${element.tagName}:${element.getAttribute("name") || ""}:${index}`;
  }

  function remember(root) {
    const state = { checked: new Map(), open: new Set(), focus: null };
    root.querySelectorAll("input[type=checkbox]").forEach((box, i) => state.checked.set(keyOf(box, i), box.checked));
    root.querySelectorAll("details").forEach((details, i) => details.open && state.open.add(keyOf(details, i)));
    const focused = document.activeElement;
    if (focused && root.contains(focused)) {
      state.focus = focused.id ? `#${CSS.escape(focused.id)}` : null;
      if (!state.focus && focused.getAttribute("href")) state.focus = `[href="${CSS.escape(focused.getAttribute("href"))}"]`;
    }
    return state;
  }

  function restore(root, state) {
    root.querySelectorAll("input[type=checkbox]").forEach((box, i) => {
      const key = keyOf(box, i);
      if (state.checked.has(key)) box.checked = state.checked.get(key);
    });
    root.querySelectorAll("details").forEach((details, i) => {
      if (state.open.has(keyOf(details, i))) details.open = true;
    });
    if (state.focus) root.querySelector(state.focus)?.focus({ preventScroll: true });
  }

  async function refresh() {
    const element = current();
    if (!element || element.dataset.active !== "true") return;
    try {
      const response = await fetch(element.dataset.url, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const template = document.createElement("template");
      template.innerHTML = (await response.text()).trim();
      const fresh = template.content.querySelector("[data-run-progress]");
      if (!fresh) throw new Error("no progress in the answer");
      const state = remember(element);
      element.replaceWith(fresh);
      restore(fresh, state);
      if (fresh.dataset.active !== "true") return; // the run has ended: what is shown is final
    } catch (error) {
      // A hiccup (network, a restarting server) must not stop the updates; try again next time.
      console.warn("Run progress update failed:", error);
    }
    window.setTimeout(refresh, INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (current()) window.setTimeout(refresh, INTERVAL_MS);
  });
})();
