/* The API docs page. Swagger UI is handed the document already parsed (`spec`), never its
   URL: given a URL it reads the JSON with its YAML parser, which refuses what JSON allows
   (a key twice, as `200` and `"200"`) and shows "Parser error" instead of the operations.
   JSON.parse reads whatever the OpenAPI document grows into. */
(function () {
  "use strict";
  var body = document.body.dataset;
  var config = JSON.parse(document.getElementById("swagger-settings").textContent);
  var root = document.getElementById("swagger-ui");

  function fail(text) {
    root.innerHTML = "";
    var box = document.createElement("p");
    box.className = "mr-docs-error";
    box.textContent = text;
    root.appendChild(box);
  }

  fetch(config.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
    .then(function (response) {
      if (!response.ok) throw new Error("The API description answered " + response.status + ".");
      return response.text();
    })
    .then(function (text) {
      config.spec = JSON.parse(text);
      delete config.url;
      config.dom_id = "#swagger-ui";
      config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
      if (body.apiCsrf && body.csrfToken) {
        config.requestInterceptor = function (request) {
          request.headers["X-CSRFToken"] = body.csrfToken;
          return request;
        };
      }
      window.ui = SwaggerUIBundle(config);
    })
    .catch(function (error) {
      fail("The API description could not be loaded: " + error.message);
    });
})();
