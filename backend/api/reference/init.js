// The reference page: Swagger UI over the spec this server serves. No inline script (the
// page's Content-Security-Policy forbids it) and nothing from another host.
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#reference",
    deepLinking: true,
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
    displayOperationId: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
    validatorUrl: null,
  });
});
