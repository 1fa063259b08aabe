// Starts Swagger UI on /docs (a file, not an inline script: bibia's pages forbid those).
// The schema's URL comes from the page (data-openapi-url); nothing is fetched from elsewhere:
// no online validator, no remote configuration, and the token given to « Authorize » is kept
// in memory only (not in the browser's storage).
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    // no deep links: Swagger UI would put each link inside its operation's button (axe: nested-interactive)
    deepLinking: false,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: "none",
    configUrl: null,
    persistAuthorization: false,
    queryConfigEnabled: false,
  });
})();
