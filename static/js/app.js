// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Guard forms against double submission (e.g. a double-clicked Connect button).
  document.querySelectorAll("form[data-once]").forEach((form) => {
    form.addEventListener("submit", () => {
      form.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = true; });
    });
  });
  labelScrollableTables(document);
  // Fragments that pages re-render (a run's progress) bring new tables: label those too.
  new MutationObserver(() => labelScrollableTables(document)).observe(document.body, { childList: true, subtree: true });
});

// A table that scrolls sideways on a narrow screen is a named region that keyboard users can
// focus and scroll with the arrow keys (WCAG 2.1.1); truncated addresses show in full on hover.
function labelScrollableTables(root) {
  root.querySelectorAll(".table-responsive:not([tabindex])").forEach((wrapper) => {
    const table = wrapper.querySelector("table");
    const caption = table && table.caption ? table.caption.textContent.trim() : "";
    wrapper.setAttribute("tabindex", "0");
    wrapper.setAttribute("role", "region");
    if (!wrapper.hasAttribute("aria-label") && !wrapper.hasAttribute("aria-labelledby")) {
      wrapper.setAttribute("aria-label", caption || (table && table.getAttribute("aria-label")) || "Table (scrolls sideways)");
    }
  });
  root.querySelectorAll(".address:not([title]), td.cell-address > a:not([title]), td.text-break-all > a:not([title]), .breadcrumb-item.text-break-all:not([title])").forEach((element) => {
    element.setAttribute("title", element.textContent.trim());
  });
}
