// Starts ReDoc on /redoc (a file, not an inline script: bibia's pages forbid those).
// The schema's URL comes from the page (data-openapi-url); the labels ReDoc lets one set are in French.
"use strict";
(function () {
  var root = document.getElementById("redoc");
  Redoc.init(
    root.dataset.openapiUrl,
    {
      hideDownloadButton: false,
      expandResponses: "200,201",
      labels: {
        enum: "Valeurs possibles",
        enumSingleValue: "Valeur",
        enumArray: "Éléments",
        default: "Par défaut",
        deprecated: "Obsolète",
        example: "Exemple",
        examples: "Exemples",
        recursive: "Récursif",
        arrayOf: "Liste de ",
        webhook: "Événement",
        const: "Valeur",
        noResultsFound: "Aucun résultat",
        download: "Télécharger",
        downloadSpecification: "Télécharger le schéma OpenAPI",
        responses: "Réponses",
        callbackResponses: "Réponses du rappel",
        requestSamples: "Exemples de requêtes",
        responseSamples: "Exemples de réponses",
      },
    },
    root
  );
})();
