"use strict";
// Starts Swagger UI on the API's description. Everything it loads is served by this service.
(function () {
  const root = document.getElementById("swagger-ui");

  function cookie(name) {
    const found = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    requestInterceptor: (request) => {
      // A browser signed in to the pages writes with its session: Django wants the CSRF token.
      const token = cookie(root.dataset.csrfCookie);
      if (token && !["GET", "HEAD", "OPTIONS", undefined].includes(request.method)) {
        request.headers["X-CSRFToken"] = token;
      }
      return request;
    },
  });
})();
