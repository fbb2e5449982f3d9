/* Person pickers: an <input list="<id>-people" data-picker="<purpose>" data-picker-url="..."> whose <datalist>
 * the server filled with the first eligible people. As the person types, the list is replaced by the server's
 * search (GET data-picker-url&q=..., JSON [{username, display_name, detail}], eligible people only), and the
 * element [data-picker-person] after the input shows who the typed value names ("Dr Anne Morvan — radiologue,
 * Morlaix"). The input keeps the plain value the server checks (the username, or the name when
 * data-picker-value="display_name"). Native <datalist>: keyboard (arrows, Enter) and screen readers as the
 * browser provides them. No globals, no inline code (CSP). */
(function () {
  "use strict";

  var DELAY_MS = 200;

  function label(person) {
    return person.detail ? person.display_name + " — " + person.detail : person.display_name;
  }

  function setup(input) {
    if (input.dataset.pickerReady) { return; }
    input.dataset.pickerReady = "1";
    var list = document.getElementById(input.getAttribute("list"));
    var shown = input.parentNode.querySelector("[data-picker-person]");
    var byName = input.dataset.pickerValue === "display_name";
    var known = {};
    var timer = null;
    var asked = "";

    function valueOf(person) { return byName ? person.display_name : person.username; }

    function showChosen() {
      if (!shown) { return; }
      var person = known[input.value.trim()];
      shown.textContent = person ? label(person) : "";
    }

    function fill(people) {
      if (!list) { return; }
      while (list.firstChild) { list.removeChild(list.firstChild); }
      people.forEach(function (person) {
        known[valueOf(person)] = person;
        var option = document.createElement("option");
        option.value = valueOf(person);
        option.textContent = byName ? person.detail : label(person);
        list.appendChild(option);
      });
      showChosen();
    }

    function search() {
      var query = input.value.trim().slice(0, 100);
      if (query === asked) { showChosen(); return; }
      asked = query;
      var url = new URL(input.dataset.pickerUrl, window.location.href);
      if (url.origin !== window.location.origin) { return; }
      var site = document.getElementById("site_id");  // a new request: the requesting site chosen in the page
      if (site && site.value && !url.searchParams.has("task")) { url.searchParams.set("site", site.value); }
      url.searchParams.set("q", query);
      fetch(url.toString(), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (people) { if (asked === query && Array.isArray(people)) { fill(people); } })
        .catch(function () { /* the server-rendered list stays */ });
    }

    input.addEventListener("input", function () {
      showChosen();
      window.clearTimeout(timer);
      timer = window.setTimeout(search, DELAY_MS);
    });
    input.addEventListener("change", showChosen);
    asked = null;
    search();
  }

  function start() {
    document.querySelectorAll("input[data-picker][data-picker-url]").forEach(setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
