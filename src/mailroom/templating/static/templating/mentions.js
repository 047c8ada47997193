/* @-mentions in the chatter composer: typing "@li" under a textarea with data-mention-url
   lists the record's company's active users; Enter, Tab or a click writes "@login ". */
(function () {
  "use strict";
  if (window.mrMentions) return;  // the composer partial is swapped in again after a post
  window.mrMentions = true;

  var TOKEN = /(^|[\s(>])@([\w.+-]{0,150})$/;

  function listFor(area) {
    var id = area.id + "-mentions";
    var ul = document.getElementById(id);
    if (!ul) {
      ul = document.createElement("ul");
      ul.id = id;
      ul.className = "mr-mention-list";
      ul.setAttribute("role", "listbox");
      ul.setAttribute("aria-label", "People to mention");
      ul.hidden = true;
      area.after(ul);
      area.setAttribute("aria-controls", id);
      area.setAttribute("aria-autocomplete", "list");
    }
    return ul;
  }

  function close(area) {
    var ul = document.getElementById(area.id + "-mentions");
    if (ul) { ul.hidden = true; ul.innerHTML = ""; }
  }

  function token(area) {
    var match = TOKEN.exec(area.value.slice(0, area.selectionStart));
    return match ? match[2] : null;
  }

  function insert(area, login) {
    var caret = area.selectionStart;
    var before = area.value.slice(0, caret).replace(/@[\w.+-]*$/, "@" + login + " ");
    area.value = before + area.value.slice(caret);
    area.selectionStart = area.selectionEnd = before.length;
    close(area);
    area.focus();
  }

  function show(area, results) {
    var ul = listFor(area);
    ul.innerHTML = "";
    results.forEach(function (user, n) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", n === 0 ? "true" : "false");
      li.dataset.login = user.login;
      var name = document.createElement("strong");
      name.textContent = user.name;
      var login = document.createElement("span");
      login.textContent = " @" + user.login;
      li.append(name, login);
      ul.append(li);
    });
    ul.hidden = results.length === 0;
  }

  var timer = null;
  document.addEventListener("input", function (event) {
    var area = event.target;
    if (!area.matches || !area.matches("textarea[data-mention-url]")) return;
    var typed = token(area);
    clearTimeout(timer);
    if (typed === null) { close(area); return; }
    timer = setTimeout(function () {
      var url = area.dataset.mentionUrl + "&q=" + encodeURIComponent(typed);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { results: [] }; })
        .then(function (data) { if (token(area) === typed) show(area, data.results || []); })
        .catch(function () { close(area); });
    }, 120);
  });

  document.addEventListener("keydown", function (event) {
    var area = event.target;
    if (!area.matches || !area.matches("textarea[data-mention-url]")) return;
    var ul = document.getElementById(area.id + "-mentions");
    if (!ul || ul.hidden) return;
    var options = Array.from(ul.children);
    var current = options.findIndex(function (li) { return li.getAttribute("aria-selected") === "true"; });
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      var next = (current + (event.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
      options.forEach(function (li, n) { li.setAttribute("aria-selected", n === next ? "true" : "false"); });
    } else if ((event.key === "Enter" || event.key === "Tab") && options[current]) {
      event.preventDefault();
      insert(area, options[current].dataset.login);
    } else if (event.key === "Escape") {
      close(area);
    }
  });

  document.addEventListener("mousedown", function (event) {
    var li = event.target.closest(".mr-mention-list [role=option]");
    if (!li) return;
    event.preventDefault();
    insert(document.getElementById(li.parentElement.id.replace(/-mentions$/, "")), li.dataset.login);
  });

  // its look, here so the chatter's stylesheet stays the chatter's
  var style = document.createElement("style");
  style.textContent = ".mr-mention-list{list-style:none;margin:.25rem 0;padding:.25rem;max-height:12rem;" +
    "overflow:auto;border:1px solid var(--color-base-200);border-radius:6px;background:#fff;" +
    "box-shadow:0 8px 24px rgb(0 0 0/.12);font-size:.875rem}" +
    ".dark .mr-mention-list{background:var(--color-base-900,#111827)}" +
    ".mr-mention-list li{padding:.35rem .6rem;border-radius:4px;cursor:pointer}" +
    ".mr-mention-list li[aria-selected=true],.mr-mention-list li:hover{background:var(--color-primary-100,#ede9fe)}" +
    ".mr-mention-list li span{opacity:.7}";
  document.head.append(style);
})();
