/* Person pickers: an <input list="<id>-people" data-picker="<purpose>" data-picker-url="..."> whose <datalist>
 * the server filled with the first eligible people. As the person types, the list is replaced by the server's
 * search (GET data-picker-url&q=..., JSON [{username, display_name, detail}], eligible people only), and the
 * element [data-picker-person] after the input shows who the typed value names ("Dr Anne Morvan — radiologue,
 * Morlaix"). The server checks a plain value: the username, or the name when data-picker-value="display_name".
 * For a username, what the person reads and chooses is the name: the input shows "Dr Anne Morvan — radiologue,
 * Morlaix" and a hidden input, which takes over the field's name, carries the username to the server (a value
 * that names nobody known is sent as typed, for the server to refuse). Without JavaScript the input carries the
 * username itself. Native <datalist>: keyboard (arrows, Enter) and screen readers as the browser provides them.
 * No globals, no inline code (CSP). */
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
    var known = {};  // what the input may hold (a label, a username or a name) -> the person
    var timer = null;
    var asked = "";
    var carried = byName ? null : document.createElement("input");

    function valueOf(person) { return byName ? person.display_name : label(person); }

    function remember(person) {
      known[valueOf(person)] = person;
      if (!byName) { known[person.username] = person; }
    }

    function showChosen() {
      var person = known[input.value.trim()];
      if (carried) { carried.value = person ? person.username : input.value.trim(); }
      if (shown) { shown.textContent = person ? label(person) : ""; }
    }

    if (carried) {  // the username travels in a hidden input; the person reads and types names
      carried.type = "hidden";
      carried.name = input.name;
      carried.value = input.value;
      input.removeAttribute("name");
      input.parentNode.insertBefore(carried, input.nextSibling);
      if (list) {
        Array.prototype.forEach.call(list.querySelectorAll("option"), function (option) {
          var text = option.textContent.trim();
          var person = {username: option.value, display_name: text.split(" — ")[0],
                        detail: text.split(" — ").slice(1).join(" — ")};
          remember(person);
          option.value = label(person);
          option.textContent = label(person);
        });
      }
      if (known[input.value.trim()]) { input.value = label(known[input.value.trim()]); }
    }

    function fill(people) {
      if (!list) { return; }
      while (list.firstChild) { list.removeChild(list.firstChild); }
      people.forEach(function (person) {
        remember(person);
        var option = document.createElement("option");
        option.value = valueOf(person);
        option.textContent = byName ? person.detail : label(person);
        list.appendChild(option);
      });
      showChosen();
    }

    function search() {
      var query = known[input.value.trim()] ? "" : input.value.trim().slice(0, 100);  // chosen: the first ones
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
      if (known[input.value.trim()]) { return; }  // a suggestion chosen: nothing more to search
      window.clearTimeout(timer);
      timer = window.setTimeout(search, DELAY_MS);
    });
    input.addEventListener("change", showChosen);
    asked = null;
    showChosen();
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
