/* The composer: recipient chips with a contact autocomplete, typed addresses checked as you
   add them, the record's followers one click away, and the error summary brought into view
   (and focus) whenever the form comes back refused. Event delegation: it survives htmx swaps. */
(function () {
  "use strict";

  // a sane shape only; the server checks each address as the outbox does
  var ADDRESS = /^[^\s@,;<>()"]+@[^\s@,;<>()"]+\.[^\s@,;<>()"]{2,}$/;
  var timers = new WeakMap();

  function picker(el) { return el && el.closest("[data-picker]"); }
  function input(box) { return box.querySelector(".mr-chip-input"); }
  function list(box) { return box.querySelector(".mr-picker-list"); }

  function showError(box, text) {
    var line = box.querySelector("[data-picker-error]");
    line.textContent = text || "";
    line.hidden = !text;
    box.querySelector("[data-chips]").classList.toggle("is-invalid", !!text);
    input(box).setAttribute("aria-invalid", text ? "true" : "false");
  }

  function has(box, key) {
    return !!box.querySelector('[data-chip="' + CSS.escape(key) + '"]');
  }

  function chip(box, key, icon, label, name, value, title) {
    if (has(box, key)) return false;
    var span = document.createElement("span");
    span.className = "mr-chip";
    span.setAttribute("data-chip", key);
    if (title) span.title = title;
    var symbol = document.createElement("span");
    symbol.className = "material-symbols-outlined";
    symbol.setAttribute("aria-hidden", "true");
    symbol.textContent = icon;
    var hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = name; hidden.value = value;
    var remove = document.createElement("button");
    remove.type = "button"; remove.className = "mr-chip-x";
    remove.setAttribute("data-remove", "");
    remove.setAttribute("aria-label", "Remove " + label);
    remove.textContent = "×";
    span.append(symbol, document.createTextNode(label), hidden, remove);
    input(box).before(span);
    syncSuggestions();
    return true;
  }

  function addPartner(box, item) {
    if (box.dataset.kind === "to") {
      chip(box, "p" + item.id, "person", item.name, "partners", item.id, item.email);
    } else {
      chip(box, "a" + item.email.toLowerCase(), "mail", item.email, box.dataset.kind, item.email);
    }
  }

  function addAddress(box, text) {
    text = text.trim().replace(/[,;]+$/, "").trim();
    if (!text) return true;
    if (!ADDRESS.test(text)) {
      showError(box, "“" + text + "” is not a valid email address.");
      return false;
    }
    chip(box, "a" + text.toLowerCase(), "mail", text, box.dataset.kind, text);
    showError(box, "");
    return true;
  }

  function close(box) {
    var ul = list(box);
    ul.hidden = true;
    ul.innerHTML = "";
    input(box).setAttribute("aria-expanded", "false");
    input(box).removeAttribute("aria-activedescendant");
  }

  function render(box, results, text) {
    var ul = list(box);
    ul.innerHTML = "";
    var field = input(box);
    results.forEach(function (item, n) {
      var li = document.createElement("li");
      li.id = field.id + "-opt-" + n;
      li.setAttribute("role", "option");
      li.className = "mr-picker-option";
      li._item = item;
      var name = document.createElement("strong");
      name.textContent = item.name;
      var mail = document.createElement("span");
      mail.className = "mr-subtle";
      mail.textContent = " " + item.email + (item.blacklisted ? " · blacklisted" : "");
      li.append(name, mail);
      ul.append(li);
    });
    if (text.indexOf("@") > 0 && ADDRESS.test(text) && !results.some(function (item) {
      return item.email.toLowerCase() === text.toLowerCase();
    })) {
      var add = document.createElement("li");
      add.id = field.id + "-opt-new";
      add.setAttribute("role", "option");
      add.className = "mr-picker-option";
      add._address = text;
      add.textContent = "Add “" + text + "”";
      ul.append(add);
    }
    var any = ul.children.length > 0;
    ul.hidden = !any;
    field.setAttribute("aria-expanded", any ? "true" : "false");
    if (any) activate(box, 0);
  }

  function activate(box, index) {
    var options = list(box).querySelectorAll("[role=option]");
    options.forEach(function (li, n) {
      li.setAttribute("aria-selected", n === index ? "true" : "false");
    });
    if (options[index]) input(box).setAttribute("aria-activedescendant", options[index].id);
  }

  function choose(box, li) {
    if (li._item) addPartner(box, li._item);
    else if (li._address) addAddress(box, li._address);
    input(box).value = "";
    showError(box, "");
    close(box);
    input(box).focus();
  }

  function search(box) {
    var text = input(box).value.trim();
    if (!text) { close(box); return; }
    fetch(box.dataset.url + "?q=" + encodeURIComponent(text), {
      headers: { "Accept": "application/json" }, credentials: "same-origin"
    }).then(function (r) { return r.ok ? r.json() : { results: [] }; })
      .then(function (data) {
        if (input(box).value.trim() === text) render(box, data.results || [], text);
      }).catch(function () { close(box); });
  }

  document.addEventListener("input", function (event) {
    var box = picker(event.target);
    if (!box || !event.target.classList.contains("mr-chip-input")) return;
    showError(box, "");
    clearTimeout(timers.get(box));
    timers.set(box, setTimeout(function () { search(box); }, 150));
  });

  document.addEventListener("keydown", function (event) {
    var box = picker(event.target);
    if (!box || !event.target.classList.contains("mr-chip-input")) return;
    var field = event.target;
    var options = Array.from(list(box).querySelectorAll("[role=option]"));
    var current = options.findIndex(function (li) {
      return li.getAttribute("aria-selected") === "true";
    });
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!options.length) return;
      event.preventDefault();
      var step = event.key === "ArrowDown" ? 1 : -1;
      activate(box, (current + step + options.length) % options.length);
    } else if (event.key === "Enter") {
      if (!field.value.trim()) return;  // an empty field: Enter sends the form
      event.preventDefault();
      if (!list(box).hidden && options[current]) choose(box, options[current]);
      else if (addAddress(box, field.value)) { field.value = ""; close(box); }
    } else if (event.key === "," || event.key === ";") {
      event.preventDefault();
      if (addAddress(box, field.value)) { field.value = ""; close(box); }
    } else if (event.key === "Escape") {
      close(box);
    } else if (event.key === "Backspace" && !field.value) {
      var chips = box.querySelectorAll("[data-chip]");
      if (chips.length) { chips[chips.length - 1].remove(); syncSuggestions(); }
    }
  });

  // leaving the field keeps what was typed as an address (or says why it cannot)
  document.addEventListener("focusout", function (event) {
    var box = picker(event.target);
    if (!box || !event.target.classList.contains("mr-chip-input")) return;
    setTimeout(function () {
      if (box.contains(document.activeElement)) return;
      close(box);
      if (addAddress(box, event.target.value)) event.target.value = "";
    }, 150);
  });

  document.addEventListener("mousedown", function (event) {
    var li = event.target.closest(".mr-picker-option");
    if (!li) return;
    event.preventDefault();  // keep the focus in the field
    choose(picker(li), li);
  });

  document.addEventListener("click", function (event) {
    var remove = event.target.closest("[data-remove]");
    if (remove && picker(remove)) {
      var box = picker(remove);
      remove.closest("[data-chip]").remove();
      syncSuggestions();
      input(box).focus();
      return;
    }
    var chips = event.target.closest("[data-chips]");
    if (chips && event.target === chips) { input(picker(chips)).focus(); return; }
    var suggestion = event.target.closest("[data-add-partner], [data-add-all]");
    if (!suggestion) return;
    var to = document.querySelector('[data-picker][data-kind="to"]');
    var buttons = suggestion.hasAttribute("data-add-all")
      ? document.querySelectorAll("[data-add-partner]") : [suggestion];
    buttons.forEach(function (button) {
      addPartner(to, { id: button.dataset.addPartner, name: button.dataset.name,
                       email: button.dataset.email });
    });
  });

  // an address still in a field when the form leaves becomes a chip first; an invalid one
  // stops the send with its red line
  function flush() {
    var ok = true;
    document.querySelectorAll("[data-picker] .mr-chip-input").forEach(function (field) {
      var box = picker(field);
      if (addAddress(box, field.value)) { field.value = ""; close(box); } else { ok = false; }
    });
    return ok;
  }
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "composer-form" || flush()) return;
    event.preventDefault();
    event.stopPropagation();
    var bad = document.querySelector('[data-picker] [aria-invalid="true"]');
    if (bad) { bad.scrollIntoView({ block: "center" }); bad.focus(); }
  }, true);
  document.addEventListener("click", function (event) {
    if (event.target.closest("#composer-preview-button")) flush();
  }, true);

  // followers already chosen are not proposed again
  function syncSuggestions() {
    var to = document.querySelector('[data-picker][data-kind="to"]');
    var box = document.getElementById("follower-suggestions");
    if (!to || !box) return;
    var left = 0;
    box.querySelectorAll("[data-add-partner]").forEach(function (button) {
      button.hidden = has(to, "p" + button.dataset.addPartner);
      if (!button.hidden) left += 1;
    });
    var all = box.querySelector("[data-add-all]");
    if (all) all.hidden = left < 2;
    box.hidden = left === 0;
  }

  function revealErrors() {
    syncSuggestions();
    var summary = document.getElementById("composer-errors");
    if (!summary) return;
    summary.scrollIntoView({ block: "start" });
    summary.focus({ preventScroll: true });
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "composer-fields") revealErrors();
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", revealErrors);
  } else {
    revealErrors();
  }
})();
