// Live progress on a run's page: fetch the progress fragment every 2 s while the run is active and swap
// it in. Without JavaScript the page is still right when reloaded (it has a Refresh link).
(() => {
  const INTERVAL_MS = 2000;

  function current() {
    return document.querySelector("[data-run-progress]");
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
      element.replaceWith(fresh);
      if (fresh.dataset.active !== "true") {
        // The run has ended: reload once so the outcome table shows every final status.
        window.location.reload();
        return;
      }
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
