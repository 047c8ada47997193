/* The chatter panel's few client rules; the rest is htmx attributes and Alpine state. */
(function () {
  "use strict";

  function panelOf(elt) {
    return (elt && elt.closest && (elt.closest(".chatter") || elt.closest(".mr-chatter"))) ||
      document.getElementById("chatter");
  }

  function showError(elt, text) {
    var panel = panelOf(elt);
    if (!panel) return;
    var line = panel.querySelector(".chatter-request-error");
    if (!line) {
      line = document.createElement("p");
      line.className = "chatter-error chatter-request-error";
      line.setAttribute("role", "alert");
      panel.insertBefore(line, panel.firstChild ? panel.firstChild.nextSibling : null);
    }
    line.textContent = text;
  }

  function clearError(elt) {
    var panel = panelOf(elt);
    var line = panel && panel.querySelector(".chatter-request-error");
    if (line) line.remove();
  }

  // 422 carries the form back with its red line: swap it like a success.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var text = status === 403
      ? "Your session changed (403). Reload the page and try again; what you typed is still here."
      : status === 404
        ? "This record is not available to you any more (404)."
        : status === 413
          ? "The file is too large to upload."
          : "Something went wrong (" + status + "). Nothing was lost: try again in a moment.";
    showError(event.detail.elt, text);
  });

  document.addEventListener("htmx:sendError", function (event) {
    showError(event.detail.elt, "Mailroom could not be reached. Check the connection and try again.");
  });

  // unfold's app.js gives every file input a change listener written for its own file widget,
  // which throws on ours. Claim ours first: swaps run before its MutationObserver callback.
  function claimFileInputs() {
    document.querySelectorAll(".chatter input[type=file]").forEach(function (input) {
      input.hasChangeListener = true;
    });
  }
  document.addEventListener("htmx:oobAfterSwap", claimFileInputs);

  // "Show remote images": reload that one email's sandboxed frame under the relaxed policy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-chatter-show-images]");
    if (!button) return;
    var box = button.closest("[data-chatter-email]");
    var frame = box && box.querySelector("iframe[data-images-src]");
    if (!frame) return;
    frame.src = frame.getAttribute("data-images-src");
    button.closest(".chatter-remote-images").remove();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    claimFileInputs();
    clearError(event.detail.elt);
    var target = event.detail.target;
    if (target && target.id === "chatter") target.setAttribute("aria-busy", "false");
  });
})();
