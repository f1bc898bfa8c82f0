// The live part of the page, fetched again every second and swapped in when it changed.
// Nothing else: every action is a plain form post, so the page works without this file.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var source = live.getAttribute("data-src");
  var last = live.innerHTML;
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(source, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || response.status === 401) {
          window.location.reload(); // logged out (the daemon restarted): the login form
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        // not while a button is pressed: the form would be replaced under the click
        if (html !== null && html !== last && !live.querySelector("form:active")) {
          live.innerHTML = html;
          last = html;
        }
      })
      .catch(function () {
        /* the daemon is restarting: try again next second */
      })
      .then(function () {
        busy = false;
      });
  }
  setInterval(refresh, 1000);
})();
