// Swagger UI over the console's own OpenAPI document (no CDN: the assets come from flask-swagger-ui).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof SwaggerUIBundle === "undefined") { return; }
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
  // Swagger UI leaves its editors without labels: name each one after its purpose once it appears.
  function nameFields() {
    root.querySelectorAll("textarea:not([aria-label]), select:not([aria-label])").forEach(function (field) {
      if (field.labels && field.labels.length) { return; }
      var block = field.closest(".opblock");
      var where = block ? block.querySelector(".opblock-summary-path") : null;
      var what = field.tagName === "TEXTAREA" ? "Request body (JSON)" : "Choice";
      field.setAttribute("aria-label", what + (where ? " for " + where.textContent.trim() : ""));
    });
  }
  new MutationObserver(nameFields).observe(root, {childList: true, subtree: true});
}());
