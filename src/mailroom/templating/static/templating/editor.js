/* The template editor and the composer: TinyMCE (bundled, served by us), the placeholder
   browser, and htmx glue (422 swaps like 200, editors survive swaps). */
(function () {
  "use strict";

  // Jinja blocks ({% for %} between table rows, {# comments #}) must survive TinyMCE's
  // HTML parser untouched: `protect` keeps them as opaque tokens. JSON cannot carry regexes,
  // which is why this script (not django-tinymce's) initialises the editor.
  var CONFIG = {
    license_key: "gpl", promotion: false, branding: false, menubar: false,
    plugins: "code link lists table", height: 360, entity_encoding: "raw",
    toolbar: "undo redo | blocks | bold italic underline | bullist numlist | link table | code",
    convert_urls: false, relative_urls: false, remove_script_host: false,
    protect: [/\{%[\s\S]*?%\}/g, /\{#[\s\S]*?#\}/g],
    setup: function (editor) {
      editor.on("change input undo redo", function () { editor.save(); });
      editor.on("focus", function () { lastTarget = editor; });
    }
  };
  var lastTarget = null;

  function initEditors(root) {
    if (!window.tinymce) return;
    (root || document).querySelectorAll("textarea.mr-rich").forEach(function (area) {
      if (area.closest(".empty-form") || window.tinymce.get(area.id)) return;
      window.tinymce.init(Object.assign({}, CONFIG, { target: area }));
    });
  }

  function removeEditors(root) {
    if (!window.tinymce || !root) return;
    root.querySelectorAll("textarea.mr-rich").forEach(function (area) {
      var editor = window.tinymce.get(area.id);
      if (editor) editor.remove();
    });
  }

  function insertPlaceholder(text) {
    if (lastTarget && lastTarget.insertContent) {
      lastTarget.insertContent(text);
      return;
    }
    var field = lastTarget || document.querySelector("#id_subject");
    if (!field) return;
    var start = field.selectionStart || field.value.length;
    var end = field.selectionEnd || start;
    field.value = field.value.slice(0, start) + text + field.value.slice(end);
    field.focus();
    field.selectionStart = field.selectionEnd = start + text.length;
  }

  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if ((el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text")) &&
        !el.closest(".mr-placeholders")) {
      lastTarget = el;
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-placeholder]");
    if (!button) return;
    event.preventDefault();
    insertPlaceholder(button.getAttribute("data-placeholder"));
  });

  // the textarea holds the editor's HTML before any form is sent (htmx or not)
  document.addEventListener("submit", function () {
    if (window.tinymce) window.tinymce.triggerSave();
  }, true);
  // htmx gathers the form's values before htmx:configRequest: save the editors first
  document.addEventListener("htmx:confirm", function () {
    if (window.tinymce) window.tinymce.triggerSave();
  });
  // the preview and the test send render the editor's unsaved text: its fields travel as
  // src_<name> (the preview form has its own "lang", the record's language)
  var EDITED = ["subject", "body_html", "email_from", "email_to", "partner_to", "email_cc",
                "reply_to", "lang", "scheduled_send", "layout"];
  document.addEventListener("htmx:configRequest", function (event) {
    if (window.tinymce) window.tinymce.triggerSave();
    var elt = event.detail.elt;
    if (!elt || !elt.closest || !elt.closest("[data-with-edits]")) return;
    var body = document.querySelector("textarea[name=body_html]");
    var form = body && body.form;
    if (!form) return;
    EDITED.forEach(function (name) {
      var field = form.elements[name];
      if (field && field.value !== undefined) event.detail.parameters["src_" + name] = field.value;
    });
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
    if (event.detail.shouldSwap) removeEditors(event.detail.target);
  });
  document.addEventListener("htmx:load", function (event) { initEditors(event.target); });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { initEditors(document); });
  } else {
    initEditors(document);
  }
  // inline rows added in the admin (translations)
  document.addEventListener("formset:added", function (event) { initEditors(event.target); });
})();
