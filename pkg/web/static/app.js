// The access page's little script: live tables, the enrollment's steps,
// confirmations. No framework, no build step.
"use strict";
(function () {
  var base = document.body.dataset.base || "";

  document.querySelectorAll("form.confirm").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });

  // Reload a [data-live] block from the server: the same page, parsed, the
  // element with the same id swapped in.
  function reload(el) {
    fetch(el.dataset.live, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById(el.id);
        if (fresh) el.innerHTML = fresh.innerHTML;
        var rs = doc.getElementById("reader-status"), cur = document.getElementById("reader-status");
        if (rs && cur) { cur.textContent = rs.textContent; cur.className = rs.className; }
        document.body.dataset.reloads = String(Number(document.body.dataset.reloads || 0) + 1);
      })
      .catch(function () {});
  }

  var live = document.querySelectorAll("[data-live]");
  if (live.length) {
    var es = new EventSource(base + "/events");
    es.addEventListener("hello", function () { document.body.dataset.live = "on"; });
    es.addEventListener("change", function () { live.forEach(reload); });
    if (document.getElementById("status-live")) {
      window.setInterval(function () { live.forEach(reload); }, 3000);
    }
  }

  var enroll = document.getElementById("enroll");
  if (enroll && enroll.dataset.active === "true") {
    var steps = document.getElementById("enroll-steps");
    var result = document.getElementById("enroll-result");
    var seen = steps.children.length, n = 0;
    var src = new EventSource(enroll.dataset.events);
    src.addEventListener("enroll", function (e) {
      var ev = JSON.parse(e.data);
      if (++n <= seen) return; // already on the page
      var li = document.createElement("li");
      li.className = "ev-" + ev.Kind;
      li.textContent = ev.Message;
      steps.appendChild(li);
      if (ev.Kind === "enrolled") {
        result.textContent = "Enrolled " + ev.Name + ": card " + ev.UID + ".";
        result.hidden = false;
        result.id = "enroll-result";
        result.dataset.kind = "enrolled";
      } else if (ev.Kind !== "waiting") {
        result.textContent = ev.Message;
        result.hidden = false;
        result.dataset.kind = ev.Kind;
      }
    });
    src.addEventListener("end", function () {
      src.close();
      var c = document.getElementById("enroll-cancel");
      if (c) c.hidden = true;
      enroll.dataset.active = "false";
    });
  }
})();
