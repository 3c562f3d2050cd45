// Gatehouse console: the only script. Pages that hold live deployments carry
// data-refresh="<seconds>" on <body>; reload them then, unless the user is typing in
// or has changed a form field, or the tab is hidden. Every page works without it
// (a <noscript> meta refresh takes over).
(function () {
  "use strict";
  var seconds = parseInt(document.body && document.body.getAttribute("data-refresh"), 10);
  if (!seconds || seconds < 1) {
    return;
  }
  var changed = false;
  document.addEventListener("input", function () { changed = true; }, true);
  document.addEventListener("change", function () { changed = true; }, true);
  window.setInterval(function () {
    var active = document.activeElement;
    var typing = active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
    if (!changed && !typing && document.visibilityState !== "hidden") {
      window.location.reload();
    }
  }, seconds * 1000);
})();
