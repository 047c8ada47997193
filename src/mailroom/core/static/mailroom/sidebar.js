/* The sidebar at 1280 px. Unfold's CSS lays the sidebar beside the content from 1280 px
   (Tailwind's xl), but its script closes it at widths up to 1280 (`innerWidth <= 1280`), so
   a 1280-px screen opened with no navigation. This wraps unfold's `theme()` (the page's Alpine
   data) so the sidebar is open from 1280 px unless the user closed it; narrower screens keep
   it behind the menu button. Loaded after unfold's app.js and before Alpine starts. */
(function () {
  "use strict";
  var WIDE = 1280;
  var unfoldTheme = window.theme;
  if (typeof unfoldTheme !== "function") return;

  function wide() { return window.innerWidth >= WIDE; }
  function remembered() { return localStorage.getItem("sidebarOpen") !== "0"; }

  window.theme = function () {
    var data = unfoldTheme.apply(this, arguments);
    data.sidebarOpen = wide() && remembered();
    data.sidebarToggle = function () {
      this.sidebarOpen = !this.sidebarOpen;
      if (wide()) localStorage.setItem("sidebarOpen", this.sidebarOpen ? "1" : "0");
    };
    if (data.themeBindings) {
      data.themeBindings["x-resize.window"] = function () {
        this.sidebarOpen = wide() && remembered();
      };
    }
    return data;
  };
})();
